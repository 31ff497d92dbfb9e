"""A fake OpenAI-compatible server over real HTTP, for tests and benchmarks.

Run standalone:  python tests/fake_openai.py --port 8000 --latency-ms 50
(`--port 0` picks a free port; the first stdout line is `LISTENING <port>`.)

Endpoints
- POST /v1/chat/completions   deterministic replies by intent:
    * extraction (response_format schema name "extraction", or a prompt asking for topics /
      knowledge points): 1-2 topics and 1-5 knowledge points derived from the problem's words
      (a vocabulary of 80 topics and 800 knowledge points; same text -> same reply);
    * variant_rewrite (schema name "variant_rewrite"): the problem after "Problem:" with
      "1 apples" -> "1 apple" and "a 8" -> "an 8";
    * solve paths (a `graphgen solve` prompt: "independent attempt N"): a prose solution or
      a program, right or wrong as scripted in the question (see `solve_path_for`);
    * judge prompts (graphgen.judge: "Task: same_concept|answer_match|same_problem" and two
      items in <<<...>>>): "yes" exactly for the pairs of the truth table set with
      /_config {"judge": {task: [[a, b], ...]}}, else "no" (`judge_for`; /_stats
      "judge_calls" counts them per task); "Task: question_check" (question and answer in
      <<<...>>>) answers from the table /_config {"judge": {"question_check": {question:
      {field: value, ...}}}}: the planted fields over the default of a well-posed regular
      problem with one answer (answer type integer when the answer is a whole number, else
      expression);
    * generated_qa (schema name "generated_qa", or anything else): a question/solution/answer
      built from the prompt text.
  Usage numbers are approximate real ones (tokens = chars / 4).
- POST /v1/embeddings         deterministic hash-seeded unit vectors (dim 384, or `dimensions`).
- POST /v1/messages           Anthropic's Messages API (x-api-key and anthropic-version
                               required; no response_format or seed): the same replies.
- GET  /v1/models
Control (for tests)
- POST /_script  {"faults": [FAULT, ...], "append": false}. Each incoming chat request takes
  the first queued fault whose optional "match" substring occurs in the request body. FAULT:
    {"status": 429, "retry_after": 1}   error status (+ Retry-After seconds)
    {"status": 429, "retry_after_ms": 200}
    {"status": 500}
    {"drop": true}            close the connection without replying
    {"malformed": true}       unparseable reply text (finish_reason stop)
    {"fence": true}           valid JSON inside a markdown fence with prose around it
    {"truncate": true}        reply cut in half, finish_reason "length"
    {"invalid_schema": true}  valid JSON that does not match the schema
    {"content": "..."}        exact reply text
    {"latency_ms": 300}       latency for this one request
    {"surrogate": true}       the valid reply with a lone surrogate (\\ud83d, JSON-escaped as
                              llama.cpp sends half an emoji) inside its first string value
    {"echo_auth": true}       the valid reply with the request's Authorization header
                              appended to its first string value (a hostile/buggy proxy)
    {"extra_fields": true}    the valid reply plus fields the schema does not have
  "times": n repeats a fault n times.
- POST /_config  {"latency_ms": 50, "reject_json_schema": true, "gsm8k": "path/to/gsm8k.jsonl",
                 "server": "llama.cpp", "plant": {"wrong_every": 5, "copies": [...], "copy_every": 7}}
  (plant: generated rows with a wrong answer and benchmark copies, see `PLANT`)
  (gsm8k: solve's code prompts for those questions get programs derived from the worked
  solution's calculator annotations, see tests/gsm8k_programs.py; cleared by /_reset)
- POST /v1/files (purpose "batch"), GET /v1/files/{id}, GET /v1/files/{id}/content,
  POST /v1/batches, GET /v1/batches (newest first, `after`, `limit`), GET /v1/batches/{id},
  POST /v1/batches/{id}/cancel: the Batch API. A batch runs every request line through the
  same replies as /v1/chat/completions (scripted faults apply per line: a status fault goes
  to the error file) after `batch_delay_ms`; `batch_expire_after` N expires it after N lines.
- POST /_config  {"latency_ms": 50, "reject_json_schema": true, "batch_delay_ms": 500,
                  "batch_expire_after": 10, "reject_batches": true (404 on files/batches)}
    server "llama.cpp" behaves like llama-cpp-python: response_format json_schema is refused
    with HTTP 500 and a pydantic message; json_object with a "schema" is honoured (the reply
    always matches the schema, even when a fault would have broken it), json_object without
    one gives replies that miss the schema (a small model unconstrained); GET /v1/models
    says owned_by "llamacpp". "vllm" (guided_json, owned_by "vllm") and "ollama" (format,
    owned_by "library") honour their own fields the same way and accept json_schema.
    Requests record their schema-carrying fields in /_stats ("schema_fields": counts of
    response_format.schema / guided_json / format).
- GET  /_stats   {"total", "ok", "by_status", "by_hash", "ok_by_hash", "response_formats",
                  "pending_faults", "batches_created", "batch_requests", "messages_api"}; by_hash counts requests per sha256 of (model, messages,
                  response_format), so a test can assert that no call was paid twice.
- POST /_reset   clears faults, stats and config (latency back to the command-line value).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import struct
import sys
import time
from collections import Counter

try:
    import orjson

    def _dumps(obj) -> bytes:
        return orjson.dumps(obj)

    _loads = orjson.loads
except ImportError:  # pragma: no cover
    import json

    def _dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    _loads = json.loads

from aiohttp import web

# --- deterministic vocabulary ----------------------------------------------------------

_AREAS = [
    "Linear equations", "Systems of linear equations", "Quadratic equations", "Inequalities",
    "Percentages", "Ratios and proportions", "Fractions", "Decimals", "Unit rates",
    "Whole number arithmetic", "Order of operations", "Exponents and powers", "Radicals",
    "Polynomials", "Factoring", "Rational expressions", "Functions", "Linear functions",
    "Quadratic functions", "Exponential functions", "Logarithms", "Sequences and series",
    "Arithmetic sequences", "Geometric sequences", "Triangles", "Circles", "Polygons",
    "Area and perimeter", "Volume and surface area", "Coordinate geometry", "Trigonometry",
    "Vectors", "Matrices", "Complex numbers", "Probability", "Counting", "Permutations",
    "Combinations", "Statistics", "Mean median and mode", "Number theory", "Divisibility",
    "Prime numbers", "Greatest common divisor", "Modular arithmetic", "Money and finance",
    "Simple interest", "Compound interest", "Time and work", "Distance speed and time",
    "Measurement and units", "Unit conversion", "Angles", "Similar figures", "Pythagorean theorem",
    "Absolute value", "Piecewise functions", "Inverse functions", "Limits", "Derivatives",
    "Integrals", "Set theory", "Logic", "Graph theory", "Recurrence relations", "Binomial theorem",
    "Conic sections", "Parametric equations", "Polar coordinates", "Data interpretation",
    "Estimation and rounding", "Place value", "Mixtures", "Age problems", "Work rate problems",
    "Profit and loss", "Discounts and markup", "Taxes and tips", "Calendars and time", "Patterns",
]
assert len(_AREAS) == 80
TOPICS: list[str] = _AREAS
_VERBS = [
    "Computing", "Solving for", "Simplifying", "Comparing", "Estimating", "Converting",
    "Interpreting", "Modeling", "Finding", "Applying rules to",
]
KNOWLEDGE_POINTS: list[str] = [
    f"{verb} {topic.lower()} {suffix}"
    for topic in TOPICS
    for verb, suffix in zip(_VERBS, ["values", "unknowns", "expressions", "quantities",
                                     "results", "units", "word problems", "situations",
                                     "missing terms", "problems"])
]
assert len(KNOWLEDGE_POINTS) == 800

_WORD = re.compile(r"[a-z]{3,}")
_STOP = frozenset(
    "the and for with that this what how many much are was were has have had his her its "
    "their they them you your will would can could from each into than then there these "
    "those which who whom when where why all any some one two three four five six seven eight "
    "nine ten per does did not but she him our out use used label problem topics knowledge "
    "points point solution".split()
)


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def extraction_for(text: str) -> dict:
    """Deterministic 1-2 topics and 1-5 knowledge points derived from the words of `text`."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP] or ["empty"]
    h = _h(text)
    n_topics = 1 + h % 2
    n_kps = 1 + (h >> 8) % 5
    votes = Counter(_h(w) % len(TOPICS) for w in words)
    topic_idx = [t for t, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))][:n_topics]
    kps: list[int] = []
    for i, w in enumerate(sorted(set(words), key=_h)):
        t = topic_idx[i % len(topic_idx)]
        k = t * 10 + _h("kp" + w) % 10
        if k not in kps:
            kps.append(k)
        if len(kps) == n_kps:
            break
    return {"topics": [TOPICS[t] for t in topic_idx], "knowledge_points": [KNOWLEDGE_POINTS[k] for k in kps]}


# Planted truth for end-to-end tests (POST /_config {"plant": {...}}; cleared by /_reset):
#   wrong_every k: a generated row whose prompt hash is 1 mod k states a + 2b + 1 (wrong;
#                  solve's paths, answering "what is A + B times 2", say a + 2b);
#   copies [texts], copy_every m: a prompt whose hash is 0 mod m gets one of these texts
#                  (benchmark items, each ending "what is A + B times 2?") as its question.
PLANT: dict = {}


def qa_for(text: str) -> dict:
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP][:12] or ["numbers"]
    h = _h(text)
    a, b = 2 + h % 47, 3 + (h >> 16) % 53
    topic = " ".join(words[:4])
    question = f"A problem about {topic}: what is {a} + {b} times 2?"
    copies, every = PLANT.get("copies") or [], int(PLANT.get("copy_every") or 0)
    if copies and every and h % every == 0:
        question = copies[(h // every) % len(copies)]
        a, b = (int(x) for x in _GEN_Q.search(question).groups())
    answer = a + 2 * b
    wrong = int(PLANT.get("wrong_every") or 0)
    if wrong and h % wrong == 1:
        answer += 1
    return {
        "question": question,
        "solution": f"First compute {b} times 2 = {2 * b}. Then add {a}: {a} + {2 * b} = {answer}.",
        "answer": str(answer),
    }


# GSM8K worked solutions, loaded by POST /_config {"gsm8k": path}: a solve prompt for one of
# these questions gets a program derived from its calculator annotations (gsm8k_programs.py),
# in style (attempt - 1) % 3, so k attempts give up to three distinct, mostly right programs.
GSM8K_SOLUTIONS: dict[str, str] = {}


def _question_key(text: str) -> str:
    return " ".join(text.split())


def load_gsm8k(path: str) -> int:
    import json as _json

    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = _json.loads(line)
                GSM8K_SOLUTIONS[_question_key(row["question"])] = row["answer"]
    return len(GSM8K_SOLUTIONS)


def gsm8k_program_for(question: str, attempt: int) -> str | None:
    solution = GSM8K_SOLUTIONS.get(_question_key(question))
    if solution is None:
        return None
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    from gsm8k_programs import program_for

    return program_for(question, solution, (attempt - 1) % 3)


_PROBLEM = re.compile(r"Problem:\n(.*?)\n\nReply with JSON", re.S)


def rewrite_for(prompt: str) -> dict:
    """variant_rewrite: the problem with "1 apples" -> "1 apple" and "a 8" -> "an 8" fixed."""
    m = _PROBLEM.search(prompt)
    text = m.group(1) if m else prompt
    text = re.sub(r"\b1 ((?:\w+ )?\w+?)s\b", r"1 \1", text)
    text = re.sub(r"\b([Aa]) (8|11|18|80|8\d)\b", r"\1n \2", text)
    return {"question": text}


# --- solve paths (graphgen solve) ---------------------------------------------------------
#
# A question may carry a script of its paths, known in advance to the test:
#     {{fake: answer=12; cot=R,D,W13,N; code=R,CRASH,LOOP,W7}}
# The path with attempt number i (1-based, from the prompt) takes entry (i-1) mod len:
#   R      right answer; text unique to the attempt (longer for later attempts)
#   D      right answer; a duplicate of attempt 1's R path after normalisation
#          (code: other variable names and comments; prose: other spacing and case)
#   W<x>   wrong answer x
#   N      no final answer (prose without \boxed{}; a program that prints nothing)
#   CRASH  a program that raises;  LOOP  a program that never ends (prose: like N)
#   ENV    a program that prints the environment's API key if it can see one, else 'noenv'
# Without a script: "what is A + B times 2" (the fake's generated questions) is answered
# A + 2B by every path; anything else gets a number derived from the question, with every
# fourth attempt wrong.
_FAKE_SCRIPT = re.compile(r"\{\{fake:(.*?)\}\}", re.DOTALL)
_ATTEMPT = re.compile(r"independent attempt (\d+)")
_GEN_Q = re.compile(r"what is (\d+) \+ (\d+) times 2", re.IGNORECASE)


def _solve_script(question: str) -> tuple[str, dict[str, list[str]]]:
    m = _FAKE_SCRIPT.search(question)
    if m:
        fields = dict(part.strip().split("=", 1) for part in m.group(1).split(";") if "=" in part)
        answer = fields.get("answer", "0").strip()
        plan = {k: [e.strip() for e in fields.get(k, "R").split(",")] for k in ("cot", "code")}
        if "say" in fields:  # every path states exactly this final answer (commas and all)
            plan = {k: ["W" + fields["say"].strip()] for k in ("cot", "code")}
        return answer, plan
    g = _GEN_Q.search(question)
    if g:
        answer = str(int(g.group(1)) + 2 * int(g.group(2)))
        return answer, {"cot": ["R"], "code": ["R"]}
    answer = str(_h(question) % 997)
    return answer, {"cot": ["R", "R", "R", f"W{int(answer) + 1}"], "code": ["R", "R", "R", f"W{int(answer) + 1}"]}


def solve_path_for(user_text: str, style: str) -> dict:
    """A cot solution or a program for the question in a solve prompt (see the script above)."""
    q = user_text.split("Problem:", 1)[-1].split("This is independent attempt", 1)[0].strip()
    m = _ATTEMPT.search(user_text)
    attempt = int(m.group(1)) if m else 1
    derived = gsm8k_program_for(q, attempt) if style == "code" else None
    if derived:  # a loaded GSM8K question: a program from its worked solution (see /_config)
        return {"program": derived}
    answer, plan = _solve_script(q)
    entries = plan[style]
    entry = entries[(attempt - 1) % len(entries)]
    if style == "cot":
        def prose(ans: str, i: int) -> str:
            return (f"Approach {i}: we read the problem carefully. "
                    + "We check the computation again. " * i + f"So the answer is \\boxed{{{ans}}}.")
        if entry == "R":
            return {"solution": prose(answer, attempt)}
        if entry == "D":
            return {"solution": "  " + prose(answer, 1).upper().replace(" ", "   ").replace("\\BOXED", "\\boxed")}
        if entry.startswith("W"):
            return {"solution": prose(entry[1:], attempt)}
        return {"solution": f"Approach {attempt}: this problem is hard and I could not finish."}

    def program(ans: str, i: int, var: str = "result", tmp: str = "step") -> str:
        lines = [f"# attempt {i}", f"{var} = {ans}"]
        lines += [f"{tmp}{j} = {var} * {j + 1}" for j in range(i)]
        return "\n".join(lines + [f"print({var})"]) + "\n"
    g = _GEN_Q.search(q)
    if entry == "R" and g and not _FAKE_SCRIPT.search(q):
        # the fake's generated questions: a program that computes from the stated numbers
        # (so `generate variants` can shift them and re-run it)
        lines = [f"# attempt {attempt}", f"a = {g.group(1)}", f"b = {g.group(2)}", "result = a + b * 2"]
        lines += [f"step{j} = result * {j + 1}" for j in range(attempt)]
        return {"program": "\n".join(lines + ["print(result)"]) + "\n"}
    if entry == "R":
        return {"program": program(answer, attempt)}
    if entry == "D":
        return {"program": program(answer, 1, var="value", tmp="other") .replace("# attempt 1", "# same idea")}
    if entry.startswith("W"):
        return {"program": program(entry[1:], attempt)}
    if entry == "CRASH":
        return {"program": "x = 1 / 0\nprint(x)\n"}
    if entry == "LOOP":
        return {"program": "while True:\n    pass\n"}
    if entry.startswith("BIG"):  # prints an integer of that many digits (as text: no int() limit)
        return {"program": f"print('1' * {int(entry[3:])})\n"}
    if entry == "ENV":
        return {"program": "import os\nprint(os.environ.get('OPENAI_API_KEY', 'noenv'))\n"}
    return {"program": "x = 1\n"}


def embedding_for(text: str, dim: int) -> list[float]:
    rnd = random.Random(_h(text))
    v = [rnd.gauss(0.0, 1.0) for _ in range(dim)]
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


# --- server ------------------------------------------------------------------------------

# Local servers the fake can play (POST /_config {"server": ...}), and where each takes a
# schema in json_object mode; unconstrained, their "small model" replies miss the schema.
# Judge prompts (graphgen.judge): "Task: <task>" and two items in <<<...>>>. The reply is
# "yes" exactly when the unordered pair is in the truth table set by /_config {"judge":
# {task: [[first, second], ...]}} (texts compared stripped and case-folded), else "no".
JUDGE: dict[str, set] = {}
JUDGE_CALLS: Counter = Counter()
_JUDGE_TASK = re.compile(r"^Task: (same_concept|answer_match|same_problem|question_check)\s*$", re.MULTILINE)
CHECKS: dict[str, dict] = {}  # question_check: normalised question -> planted reply fields
_JUDGE_ITEM = re.compile(r"<<<(.*?)>>>", re.DOTALL)


def _judge_norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def judge_for(user_text: str) -> dict | None:
    """The judge's reply to a judge prompt from the truth table, or None if it is not one."""
    m = _JUDGE_TASK.search(user_text)
    items = _JUDGE_ITEM.findall(user_text)
    if not m or len(items) < 2:
        return None
    task = m.group(1)
    JUDGE_CALLS[task] += 1
    if task == "question_check":
        question, answer = items[-2], items[-1]
        whole = re.fullmatch(r"-?\d+", answer.strip().replace(",", "")) is not None
        reply = {"reason": "truth table: a well-posed regular problem", "well_posed": "yes", "single_answer": "yes",
                 "answer_type": "integer" if whole else "expression", "problem_type": "regular"}
        planted = CHECKS.get(_judge_norm(question))
        if planted:
            reply.update(planted)
            reply["reason"] = "truth table: " + ", ".join(f"{k} {v}" for k, v in sorted(planted.items()))
        return reply
    pair = frozenset((_judge_norm(items[-2]), _judge_norm(items[-1])))
    same = pair in JUDGE.get(task, set())
    return {"reason": f"truth table: {'same' if same else 'different'} ({task})", "verdict": "yes" if same else "no"}


_LOCAL_SCHEMA_FIELD = {"llama.cpp": "response_format.schema", "vllm": "guided_json", "ollama": "format"}


class _Discard:
    """Stats sink for requests that outlived a reset."""

    def __init__(self):
        self.by_status: Counter = Counter()
        self.ok_by_hash: Counter = Counter()
        self.ok = 0


class FakeOpenAI:
    def __init__(self, latency_ms: float = 0.0):
        self.default_latency = latency_ms
        self.reset()

    generation = 0

    def reset(self) -> None:
        self.generation += 1  # requests still sleeping from before a reset are not counted after it
        GSM8K_SOLUTIONS.clear()
        PLANT.clear()
        JUDGE.clear()
        JUDGE_CALLS.clear()
        CHECKS.clear()
        self.latency = self.default_latency / 1000.0
        self.reject_json_schema = False
        self.server = "openai"
        self.schema_fields: Counter = Counter()
        self.faults: list[dict] = []
        self.total = 0
        self.ok = 0
        self.messages_api = 0  # requests to Anthropic's /v1/messages
        self.by_status: Counter = Counter()
        self.by_hash: Counter = Counter()
        self.ok_by_hash: Counter = Counter()
        self.formats: Counter = Counter()
        # Batch API
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.batch_delay = 0.0
        self.batch_expire_after: int | None = None
        self.reject_batches = False

    # control endpoints
    async def h_script(self, request: web.Request) -> web.Response:
        body = _loads(await request.read())
        faults = []
        for f in body.get("faults", []):
            faults.extend(dict(f) for _ in range(int(f.get("times", 1))))
        if body.get("append"):
            self.faults.extend(faults)
        else:
            self.faults = faults
        return web.json_response({"pending_faults": len(self.faults)})

    async def h_config(self, request: web.Request) -> web.Response:
        body = _loads(await request.read())
        if "latency_ms" in body:
            self.latency = float(body["latency_ms"]) / 1000.0
        if "reject_json_schema" in body:
            self.reject_json_schema = bool(body["reject_json_schema"])
        if body.get("gsm8k"):
            load_gsm8k(body["gsm8k"])
        if "batch_delay_ms" in body:
            self.batch_delay = float(body["batch_delay_ms"]) / 1000.0
        if "batch_expire_after" in body:
            self.batch_expire_after = body["batch_expire_after"]
        if "reject_batches" in body:
            self.reject_batches = bool(body["reject_batches"])
        if "server" in body:
            self.server = str(body["server"])
        if "judge" in body:
            JUDGE.clear()
            CHECKS.clear()
            for task, pairs in (body["judge"] or {}).items():
                if task == "question_check":
                    CHECKS.update({_judge_norm(q): dict(fields) for q, fields in pairs.items()})
                    continue
                JUDGE[task] = {frozenset((_judge_norm(a), _judge_norm(b))) for a, b in pairs}
        if "plant" in body:
            PLANT.clear()
            PLANT.update(body["plant"] or {})
        return web.json_response({"latency_ms": self.latency * 1000, "reject_json_schema": self.reject_json_schema,
                                  "server": self.server})

    async def h_stats(self, request: web.Request) -> web.Response:
        return web.Response(
            body=_dumps({
                "total": self.total,
                "ok": self.ok,
                "messages_api": self.messages_api,
                "by_status": {str(k): v for k, v in self.by_status.items()},
                "by_hash": dict(self.by_hash),
                "ok_by_hash": dict(self.ok_by_hash),
                "response_formats": dict(self.formats),
                "schema_fields": dict(self.schema_fields),
                "pending_faults": len(self.faults),
                "judge_calls": dict(JUDGE_CALLS),
                "batches_created": len(self.batches),
                "batch_requests": sum(b["request_counts"]["total"] for b in self.batches.values()),
            }),
            content_type="application/json",
        )

    async def h_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def h_models(self, request: web.Request) -> web.Response:
        owner = {"llama.cpp": "llamacpp", "vllm": "vllm", "ollama": "library"}.get(self.server, "fake")
        return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": owner}]})

    def _take_fault(self, raw: bytes) -> dict | None:
        if not self.faults:
            return None
        text = None
        for i, f in enumerate(self.faults):
            m = f.get("match")
            if m is None:
                return self.faults.pop(i)
            if text is None:
                text = raw.decode("utf-8", "replace")
            if m in text:
                return self.faults.pop(i)
        return None

    @staticmethod
    def schema_fields_of(rf: dict, body: dict) -> dict:
        """Where a request put a schema for json_object mode, by style."""
        found = {"response_format.schema": rf.get("schema"), "guided_json": body.get("guided_json"),
                 "format": body.get("format")}
        return {k: v for k, v in found.items() if isinstance(v, dict)}

    @staticmethod
    def _error(status: int, message: str, headers: dict | None = None, etype: str = "server_error") -> web.Response:
        return web.Response(
            status=status,
            body=_dumps({"error": {"message": message, "type": etype, "param": None, "code": None}}),
            content_type="application/json",
            headers=headers,
        )

    def _reply(self, body: dict, messages: list, rf: dict, model: str, digest: str, fault: dict | None, stats,
               auth: str = "") -> dict:
        """The chat completion for one request (shared by /v1/chat/completions and batches)."""
        rtype = rf.get("type", "none")
        # where the request put a schema for json_object mode (llama.cpp, vLLM, Ollama styles)
        sent = self.schema_fields_of(rf, body)
        self.schema_fields.update(sent.keys())
        sent_schema = next(iter(sent.values()), None)
        schema_name = (rf.get("json_schema") or {}).get("name") if rtype == "json_schema" else None
        prompt_text = "".join(m.get("content") or "" for m in messages if isinstance(m.get("content"), str))
        user_text = ""
        for m in reversed(messages):
            if m.get("role") == "user" and isinstance(m.get("content"), str):
                user_text = m["content"]
                break
        # a re-ask appends a correction: answer the original user message instead
        first_user = next((m["content"] for m in messages if m.get("role") == "user" and isinstance(m.get("content"), str)), user_text)
        low = prompt_text.lower()
        if sent_schema is not None and "topics" in (sent_schema.get("properties") or {}):
            schema_name = "extraction"
        free_text = None  # solve_*_v2 prompts ask for plain text: reply with the text itself
        judged = judge_for(first_user) if "Task: " in first_user else None
        if judged is not None:
            obj = judged
            bad = {"verdict": "maybe"}
        elif "independent attempt" in first_user and '{"program"' in first_user:
            obj = solve_path_for(first_user, "code")
            bad = {"program": 7}
        elif "independent attempt" in first_user and '{"solution"' in first_user:
            obj = solve_path_for(first_user, "cot")
            bad = {"solution": 7}
        elif "independent attempt" in first_user and "```python" in first_user:
            obj = solve_path_for(first_user, "code")
            bad = {"program": 7}
            free_text = "Here is the program:\n```python\n" + obj["program"].rstrip("\n") + "\n```\n"
        elif "independent attempt" in first_user and "\\boxed{}" in first_user:
            obj = solve_path_for(first_user, "cot")
            bad = {"solution": 7}
            free_text = obj["solution"]
        elif schema_name == "extraction" or (schema_name is None and ("knowledge point" in low or "topics" in low)):
            obj = extraction_for(first_user)
            bad = {"topics": [], "knowledge_points": "none"}
        elif schema_name == "variant_rewrite" or (schema_name is None and "numbers were changed" in low):
            obj = rewrite_for(first_user)
            bad = {"text": obj["question"]}
        else:
            obj = qa_for(first_user)
            bad = {"question": "", "answer": 42}
        finish = "stop"
        content = _dumps(obj).decode() if free_text is None else free_text
        if self.server in _LOCAL_SCHEMA_FIELD:
            honoured = _LOCAL_SCHEMA_FIELD[self.server]
            if rtype == "json_schema" or honoured in sent:
                fault = None  # grammar-constrained decoding: the reply matches the schema
            else:
                content = _dumps(bad).decode()  # a small local model left unconstrained
        if fault:
            if "content" in fault:
                content = fault["content"]
            elif fault.get("malformed"):
                content = "Sure! Here are the concepts: " + content[: max(1, len(content) // 2)]
            elif fault.get("fence"):
                content = "Here is the JSON you asked for:\n```json\n" + _dumps(obj).decode() + "\n```\nHope this helps."
            elif fault.get("truncate"):
                content = content[: max(1, len(content) // 2)]
                finish = "length"
            elif fault.get("invalid_schema"):
                content = _dumps(bad).decode()
            elif fault.get("surrogate"):
                first = next(iter(obj))
                value = obj[first]
                obj = {**obj, first: [value[0] + " \ud83d", *value[1:]] if isinstance(value, list) else value + " \ud83d"}
                content = json.dumps(obj, ensure_ascii=False)  # the reply text holds a lone surrogate
            elif fault.get("extra_fields"):
                content = _dumps({**obj, "confidence": 0.9, "notes": "chosen by keyword overlap"}).decode()
            if fault.get("echo_auth"):
                content += "\n(debug) request headers: Authorization: " + auth
        prompt_tokens = max(1, len(prompt_text) // 4)
        completion_tokens = max(1, len(content) // 4)
        if finish == "length" and body.get("max_tokens"):
            completion_tokens = int(body["max_tokens"])
        stats.by_status[200] += 1
        stats.ok += 1
        stats.ok_by_hash[digest] += 1
        reply = {
            "id": f"chatcmpl-{digest}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
                "logprobs": None,
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return reply

    async def h_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(await request.read(), request)

    async def h_messages(self, request: web.Request) -> web.StreamResponse:
        """Anthropic's Messages API over the same replies: checks its headers, translates
        the request to a chat completion and the reply back."""
        raw = await request.read()
        self.messages_api += 1
        if not request.headers.get("x-api-key") or not request.headers.get("anthropic-version"):
            self.total += 1
            self.by_status[401] += 1
            return web.Response(status=401, content_type="application/json", body=_dumps(
                {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}))
        body = _loads(raw)
        if "max_tokens" not in body or "response_format" in body or "seed" in body:
            self.total += 1
            self.by_status[400] += 1
            return web.Response(status=400, content_type="application/json", body=_dumps(
                {"type": "error", "error": {"type": "invalid_request_error",
                                            "message": "max_tokens: Field required (or an extra field)"}}))
        system = [{"role": "system", "content": body["system"]}] if body.get("system") else []
        chat = {"model": body["model"], "messages": system + body["messages"], "max_tokens": body["max_tokens"]}
        resp = await self._chat(_dumps(chat), request)
        if resp.status != 200:
            return resp
        reply = json.loads(resp.body)
        choice = reply["choices"][0]
        stop = {"length": "max_tokens"}.get(choice.get("finish_reason"), "end_turn")
        usage = reply.get("usage") or {}
        return web.Response(content_type="application/json", body=_dumps({
            "id": "msg_" + str(reply.get("id", "")), "type": "message", "role": "assistant",
            "model": body["model"], "stop_reason": stop,
            "content": [{"type": "text", "text": choice["message"]["content"] or ""}],
            "usage": {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0)}}))

    async def _chat(self, raw: bytes, request: web.Request) -> web.StreamResponse:
        self.total += 1
        try:
            body = _loads(raw)
            messages = body["messages"]
        except Exception:
            self.by_status[400] += 1
            return self._error(400, "invalid JSON body", etype="invalid_request_error")
        rf = body.get("response_format") or {}
        rtype = rf.get("type", "none")
        self.formats[rtype] += 1
        model = body.get("model", "fake-model")
        digest = hashlib.sha256(_dumps([model, messages, rf])).hexdigest()[:16]
        self.by_hash[digest] += 1
        fault = self._take_fault(raw)
        gen = self.generation
        latency = self.latency
        if fault and "latency_ms" in fault:
            latency = float(fault["latency_ms"]) / 1000.0
        if latency > 0:
            await asyncio.sleep(latency)
        stats = self if gen == self.generation else _Discard()
        if fault and fault.get("drop"):
            stats.by_status["drop"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        if fault and fault.get("status"):
            status = int(fault["status"])
            stats.by_status[status] += 1
            headers = {}
            if "retry_after" in fault:
                headers["Retry-After"] = str(fault["retry_after"])
            if "retry_after_ms" in fault:
                headers["retry-after-ms"] = str(fault["retry_after_ms"])
            etype = "rate_limit_error" if status == 429 else "server_error"
            return self._error(status, fault.get("message", f"scripted error {status}"), headers, etype)
        if self.server == "llama.cpp" and rtype not in ("none", "text", "json_object"):
            # llama-cpp-python validates the body with pydantic and answers 500, not 400
            stats.by_status[500] += 1
            return self._error(
                500,
                "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should be "
                f"'text' or 'json_object' [type=literal_error, input_value='{rtype}', input_type=str]",
                etype="internal_server_error",
            )
        if rtype == "json_schema" and self.reject_json_schema:
            stats.by_status[400] += 1
            return self._error(
                400, "response_format of type 'json_schema' is not supported by this server",
                etype="invalid_request_error",
            )

        reply = self._reply(body, messages, rf, model, digest, fault, stats,
                            auth=request.headers.get("Authorization", ""))
        if fault and fault.get("surrogate"):
            # orjson refuses lone surrogates; json escapes them as \\ud83d, as llama.cpp does
            return web.Response(body=json.dumps(reply).encode(), content_type="application/json")
        return web.Response(body=_dumps(reply), content_type="application/json")

    async def h_embeddings(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.total += 1
        body = _loads(raw)
        fault = self._take_fault(raw)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if fault and fault.get("status"):
            self.by_status[int(fault["status"])] += 1
            headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else None
            return self._error(int(fault["status"]), "scripted error", headers)
        inputs = body.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        dim = int(body.get("dimensions") or 384)
        data = []
        for i, text in enumerate(inputs):
            vec = embedding_for(str(text), dim)
            if body.get("encoding_format") == "base64":
                import base64

                vec = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vec})
        tokens = sum(max(1, len(str(t)) // 4) for t in inputs)
        self.by_status[200] += 1
        self.ok += 1
        return web.Response(
            body=_dumps({"object": "list", "data": data, "model": body.get("model", "fake-embed"),
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
            content_type="application/json",
        )

    # --- Batch API: /v1/files, /v1/batches -------------------------------------------------

    def _file(self, content: bytes, purpose: str, filename: str) -> dict:
        fid = f"file-{len(self.files) + 1:06d}{hashlib.sha256(content).hexdigest()[:8]}"
        self.files[fid] = {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                           "filename": filename, "purpose": purpose, "status": "processed", "_content": content}
        return self.files[fid]

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    async def h_files_create(self, request: web.Request) -> web.Response:
        if self.reject_batches:  # e.g. a vLLM server: no Files / Batch API
            return self._error(404, "Not Found", etype="not_found_error")
        form = await request.post()
        upload = form.get("file")
        content = upload.file.read() if hasattr(upload, "file") else bytes(str(upload), "utf-8")
        name = getattr(upload, "filename", "upload.jsonl")
        return web.json_response(self._public(self._file(content, str(form.get("purpose", "")), name)))

    async def h_file_get(self, request: web.Request) -> web.Response:
        f = self.files.get(request.match_info["fid"])
        if f is None:
            return self._error(404, "No such file", etype="invalid_request_error")
        return web.json_response(self._public(f))

    async def h_file_content(self, request: web.Request) -> web.Response:
        f = self.files.get(request.match_info["fid"])
        if f is None:
            return self._error(404, "No such file", etype="invalid_request_error")
        return web.Response(body=f["_content"], content_type="application/octet-stream")

    async def h_batch_create(self, request: web.Request) -> web.Response:
        body = _loads(await request.read())
        if self.reject_batches:
            return self._error(404, "Not Found", etype="not_found_error")
        f = self.files.get(body.get("input_file_id", ""))
        if f is None:
            return self._error(400, "input_file_id not found", etype="invalid_request_error")
        lines = [ln for ln in f["_content"].decode().splitlines() if ln.strip()]
        bid = f"batch_{len(self.batches) + 1:06d}"
        batch = {
            "id": bid, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
            "input_file_id": f["id"], "completion_window": body.get("completion_window", "24h"),
            "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": int(time.time()), "in_progress_at": None, "completed_at": None, "expired_at": None,
            "cancelled_at": None, "metadata": body.get("metadata") or {},
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "_cancel": False,
        }
        self.batches[bid] = batch
        batch["_task"] = asyncio.ensure_future(self._process_batch(batch, lines))
        return web.json_response(self._public(batch))

    async def _process_batch(self, batch: dict, lines: list[str]) -> None:
        """Runs each request line through the same replies as the online endpoint, after
        `batch_delay_ms`; scripted faults apply per line; `batch_expire_after` N leaves the
        batch expired after N requests (a partial output file)."""
        await asyncio.sleep(self.batch_delay / 2)
        batch["status"], batch["in_progress_at"] = "in_progress", int(time.time())
        await asyncio.sleep(self.batch_delay / 2)
        out, err = [], []
        limit = self.batch_expire_after
        final = "completed"
        for i, line in enumerate(lines):
            if batch["_cancel"]:
                final = "cancelled"
                break
            if limit is not None and i >= limit:
                final = "expired"
                break
            req = _loads(line)
            body = req["body"]
            messages = body["messages"]
            rf = body.get("response_format") or {}
            model = body.get("model", "fake-model")
            digest = hashlib.sha256(_dumps([model, messages, rf])).hexdigest()[:16]
            self.total += 1
            self.by_hash[digest] += 1
            fault = self._take_fault(line.encode())
            if fault and fault.get("status"):
                self.by_status[int(fault["status"])] += 1
                err.append({"id": f"batch_req_{i}", "custom_id": req["custom_id"],
                            "response": {"status_code": int(fault["status"]), "request_id": f"req_{i}",
                                         "body": {"error": {"message": f"scripted error {fault['status']}",
                                                            "type": "server_error"}}},
                            "error": None})
                batch["request_counts"]["failed"] += 1
                continue
            reply = self._reply(body, messages, rf, model, digest, fault, self)
            out.append({"id": f"batch_req_{i}", "custom_id": req["custom_id"],
                        "response": {"status_code": 200, "request_id": f"req_{i}", "body": reply}, "error": None})
            batch["request_counts"]["completed"] += 1
        if out:
            batch["output_file_id"] = self._file(b"".join(_dumps(o) + b"\n" for o in out), "batch_output", "out.jsonl")["id"]
        if err:
            batch["error_file_id"] = self._file(b"".join(_dumps(e) + b"\n" for e in err), "batch_output", "err.jsonl")["id"]
        batch["status"] = final
        batch[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[final]] = int(time.time())

    async def h_batch_get(self, request: web.Request) -> web.Response:
        b = self.batches.get(request.match_info["bid"])
        if b is None:
            return self._error(404, "No such batch", etype="invalid_request_error")
        return web.json_response(self._public(b))

    async def h_batch_cancel(self, request: web.Request) -> web.Response:
        b = self.batches.get(request.match_info["bid"])
        if b is None:
            return self._error(404, "No such batch", etype="invalid_request_error")
        if b["status"] in ("validating", "in_progress"):
            b["_cancel"], b["status"] = True, "cancelling"
        return web.json_response(self._public(b))

    async def h_batch_list(self, request: web.Request) -> web.Response:
        items = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)  # newest first
        after = request.query.get("after")
        if after:
            items = [b for b in items if b["id"] < after]
        limit = int(request.query.get("limit", 20))
        page = items[:limit]
        return web.json_response({"object": "list", "data": [self._public(b) for b in page],
                                  "first_id": page[0]["id"] if page else None,
                                  "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_post("/v1/chat/completions", self.h_chat)
        r.add_post("/v1/messages", self.h_messages)
        r.add_post("/chat/completions", self.h_chat)
        r.add_post("/v1/embeddings", self.h_embeddings)
        r.add_post("/embeddings", self.h_embeddings)
        r.add_get("/v1/models", self.h_models)
        r.add_post("/v1/files", self.h_files_create)
        r.add_get("/v1/files/{fid}", self.h_file_get)
        r.add_get("/v1/files/{fid}/content", self.h_file_content)
        r.add_post("/v1/batches", self.h_batch_create)
        r.add_get("/v1/batches", self.h_batch_list)
        r.add_get("/v1/batches/{bid}", self.h_batch_get)
        r.add_post("/v1/batches/{bid}/cancel", self.h_batch_cancel)
        r.add_post("/_script", self.h_script)
        r.add_post("/_config", self.h_config)
        r.add_get("/_stats", self.h_stats)
        r.add_post("/_reset", self.h_reset)
        return app


class FakeServerProcess:
    """Runs this file as a subprocess on a free loopback port and controls it over HTTP.

        with FakeServerProcess(latency_ms=50) as srv:
            settings.base_url = srv.url          # http://127.0.0.1:PORT/v1
            srv.script([{"status": 429, "retry_after": 1}])
    """

    def __init__(self, latency_ms: float = 0.0, host: str = "127.0.0.1", reject_json_schema: bool = False):
        self.latency_ms = latency_ms
        self.host = host
        self.reject = reject_json_schema
        self.proc = None
        self.port: int | None = None

    def start(self, timeout: float = 20.0) -> "FakeServerProcess":
        import subprocess

        cmd = [sys.executable, __file__, "--host", self.host, "--port", "0", "--latency-ms", str(self.latency_ms)]
        if self.reject:
            cmd.append("--reject-json-schema")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("LISTENING"):
                self.port = int(line.split()[1])
                return self
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"fake OpenAI server did not start: {line!r}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
        self.proc = None

    def __enter__(self) -> "FakeServerProcess":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI base URL (ends in /v1)."""
        return self.base + "/v1"

    def _req(self, method: str, path: str, body: dict | None = None) -> dict:
        import json as _json
        import urllib.request

        data = None if body is None else _json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return _json.loads(resp.read())

    def script(self, faults: list[dict], append: bool = False) -> dict:
        return self._req("POST", "/_script", {"faults": faults, "append": append})

    def stats(self) -> dict:
        return self._req("GET", "/_stats")

    def reset(self) -> dict:
        return self._req("POST", "/_reset", {})

    def set_latency(self, ms: float) -> dict:
        return self._req("POST", "/_config", {"latency_ms": ms})

    def load_gsm8k(self, path) -> dict:
        """Answer solve's code prompts for these GSM8K questions with annotation-derived programs."""
        return self._req("POST", "/_config", {"gsm8k": str(path)})

    def reject_json_schema(self, value: bool = True) -> dict:
        return self._req("POST", "/_config", {"reject_json_schema": value})

    def configure(self, **options) -> dict:
        """POST /_config, e.g. configure(server="llama.cpp") or batch_delay_ms=500,
        batch_expire_after=10, reject_batches=True."""
        return self._req("POST", "/_config", options)


async def serve(host: str, port: int, latency_ms: float, reject_json_schema: bool = False) -> None:
    fake = FakeOpenAI(latency_ms)
    fake.reject_json_schema = reject_json_schema
    runner = web.AppRunner(fake.app(), access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    sock = site._server.sockets[0]  # type: ignore[union-attr]
    print(f"LISTENING {sock.getsockname()[1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--reject-json-schema", action="store_true")
    args = p.parse_args(argv)
    import logging

    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    try:
        import uvloop  # type: ignore

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(args.host, args.port, args.latency_ms, args.reject_json_schema))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
