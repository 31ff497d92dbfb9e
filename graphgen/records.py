"""Typed records that flow between pipeline stages.

Every stage takes and returns these pydantic models; files, the LLM and stores sit at the
edges. `schema/` holds the JSON Schema of each (see graphgen.schemas), and a test fails when
a model and its schema drift apart.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator



class ConceptKind(str, Enum):
    topic = "topic"
    knowledge_point = "kp"


class EdgeKind(str, Enum):
    topic_topic = "topic-topic"
    topic_kp = "topic-kp"
    kp_kp = "kp-kp"


class SeedQuestion(BaseModel):
    """One seed problem as read from the user's files."""

    id: str
    question: str
    solution: str | None = None
    answer: str | None = None
    source: str = Field("", description="dataset name the seed came from (file stem unless told)")
    metadata: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="the row's other scalar fields, kept as read (e.g. MATH level and type)")


# --- LLM outputs (their schemas are sent as response_format) ---------------------------


MAX_CONCEPT_NAME = 200


_LIST_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\(?\d{1,2}[.)]|\(?[a-z][)])\s+")


class ExtractionOutput(BaseModel):
    """What the LLM returns for one seed: MathScale's 1-2 topics and 1-5 knowledge points."""

    model_config = ConfigDict(extra="forbid")
    topics: list[str] = Field(min_length=1, max_length=2)
    knowledge_points: list[str] = Field(min_length=1, max_length=5)

    @field_validator("topics", "knowledge_points")
    @classmethod
    def _names_are_short(cls, names: list[str]) -> list[str]:
        # A reply with a 2 MB "concept" is a failure (recorded with this reason in
        # extract-failures.jsonl), never a node. Checked here, not in the JSON Schema:
        # strict structured-output modes reject maxLength.
        for name in names:
            if len(name) > MAX_CONCEPT_NAME:
                raise ValueError(f"a concept name of {len(name)} characters (the cap is {MAX_CONCEPT_NAME})")
        # Models number or bullet their lists ("1. Ratios", "- Ratios"): the marker is not part
        # of the name (and its digit made every such name look like one naming the problem's numbers)
        return [_LIST_MARKER.sub("", name) or name for name in names]


class GeneratedQA(BaseModel):
    """What the LLM returns when writing (or fusing) a question."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1)
    solution: str = Field(min_length=1, description="step-by-step solution")
    answer: str = Field(min_length=1, description="final answer only")


# --- Stage records -----------------------------------------------------------------------


class LLMUsage(BaseModel):
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False


class Extraction(BaseModel):
    """Concepts extracted for one seed (names as the LLM or annotator wrote them)."""

    seed_id: str
    topics: list[str]
    knowledge_points: list[str]
    model: str = ""
    prompt_version: str = ""
    usage: LLMUsage | None = None
    dropped: list[str] = Field(default_factory=list,
                               description="concepts the reply named that were dropped, each with its reason")


class Concept(BaseModel):
    id: str = Field(description="'<kind>:<canonical name>', stable across runs and stores")
    kind: ConceptKind
    name: str = Field(description="canonical (normalised) name used for merging")
    display_name: str = Field(description="most frequent surface form")
    frequency: int = Field(0, description="number of seeds that mention the concept")
    seed_ids: list[str] = Field(default_factory=list, description="provenance: supporting seeds")
    aliases: list[str] = Field(default_factory=list,
                               description="display names of the concepts merged into this one (canonicalize)")


class ConceptMerge(BaseModel):
    """One entry of the workspace's merge map: an extracted concept shown as another one.

    Applied when the graph is built (graphgen.graph.build_graph); extractions are untouched.
    """

    alias_id: str = Field(description="concept id as extracted, e.g. 'topic:pythagoras theorem'")
    canonical_id: str = Field(description="concept id it is merged into (never itself an alias)")
    similarity: float | None = Field(None, description="embedding cosine when the merge was proposed")


class ConceptEdge(BaseModel):
    """Undirected co-occurrence edge; `source` < `target` for topic-topic and kp-kp,
    and source is the topic for topic-kp."""

    source: str
    target: str
    kind: EdgeKind
    count: int = Field(description="number of seeds in which both concepts occur")
    weight: float = Field(description="count / sqrt(freq(source) * freq(target)), in (0, 1]")
    seed_ids: list[str] = Field(default_factory=list, description="provenance: supporting seeds")


class Mention(BaseModel):
    seed_id: str
    concept_id: str
    surface: str = Field("", description="the name the extraction used for the concept")


class ConceptSample(BaseModel):
    """One random-walk combination of concepts (MathScale)."""

    id: str
    topics: list[str] = Field(description="concept ids")
    knowledge_points: list[str] = Field(description="concept ids")
    walk: list[str] = Field(description="concept ids in the order the walk visited them")
    exemplar_seed_ids: list[str] = Field(default_factory=list)


FusionStrategy = Literal["sequential", "parallel", "conditional"]
FUSION_STRATEGIES: tuple[str, ...] = get_args(FusionStrategy)  # MathFusion's three, in this order


class FusionPair(BaseModel):
    id: str
    seed_a: str
    seed_b: str
    similarity: float
    method: Literal["embedding-exact", "embedding-approx", "graph"] = "embedding-exact"


class NumberChange(BaseModel):
    """One question number a variant moved: its text before and after (every occurrence of
    it in the question and every code literal standing for it changed together)."""

    original: str
    new: str
    occurrences: int = Field(1, description="times it occurs in the question")
    code_literals: int = Field(0, description="code literals replaced, over the agreeing programs")


class JudgeVerdict(BaseModel):
    """A model judge's verdict on a question's answer, kept beside the rule's (issue 20)."""

    status: Literal["verified", "unverified", "unverifiable"]
    model: str = ""
    prompt_version: str = ""
    reason: str = ""
    mode: Literal["fallback", "always"] | None = Field(None, description="fallback: the rule's yes stands, the judge "
                                                      "decides where the rule says no; always: the judge decides every path")
    asked: int = Field(0, description="paths whose answer the judge was asked about")
    accepted: int = Field(0, description="paths whose answer counts as the reference's under this verdict")
    kept: list[str] = Field(default_factory=list, description="ids of the paths kept under the judge's verdict "
                            "(the minimal optimal set of the accepted paths)")


class VariantLineage(BaseModel):
    """Where a number-shifted variant (MMOS problem generator) came from and why it is trusted."""

    original_id: str = Field(description="id of the seed or generated row it was made from")
    original_question: str
    original_answer: str
    mode: Literal["distribution", "similar", "scale"]
    draw: str = Field(description="'<index>.<try>': which variant of the original and which draw")
    seed: int
    numbers: list[NumberChange]
    programs: list[str] = Field(description="the substituted programs that agree on the new answer")
    path_ids: list[str] = Field(default_factory=list, description="ids of the original code paths they came from")
    rewritten: bool = Field(False, description="wording fixed by an LLM, numbers checked unchanged")
    rule_agreed: bool = Field(True, description="the rule's verdict: the agreeing programs come from paths solve's "
                              "rule kept and the rule (equal numbers, or math-verify) finds their answers the same")
    rule: str = Field("", description="what the rule found (agreeing programs, or the answers it could not match)")
    judge: JudgeVerdict | None = Field(None, description="the answer judge's verdict beside the rule's ([judge] answers): "
                                       "verified when its groups of same answers reach min_agreement; "
                                       "asked = answer pairs asked, accepted = programs in the agreeing group")


class GeneratedQuestion(BaseModel):
    """A generated (or fused, or number-shifted) question with its full lineage."""

    id: str
    kind: Literal["concepts", "fusion", "variant", "path"] = Field(
        description="path: one kept reasoning path of `graphgen solve`, exported as its own row")
    status: Literal["ok", "failed"] = "ok"
    question: str = ""
    solution: str = ""
    answer: str = ""
    error: str | None = None
    raw: str | None = Field(None, description="raw model text when the reply never validated")
    # lineage
    sample_id: str | None = None
    concept_ids: list[str] = Field(default_factory=list)
    exemplar_seed_ids: list[str] = Field(default_factory=list)
    seed_ids: list[str] = Field(default_factory=list, description="fusion: the two source seeds")
    similarity: float | None = None
    strategy: str | None = None
    variant: VariantLineage | None = Field(None, description="kind 'variant': original, mode, numbers, programs")
    model: str = ""
    prompt_version: str = ""
    usage: LLMUsage | None = None


class RejectedRow(BaseModel):
    file: str
    line: int = Field(description="1-based line (JSONL/CSV) or row index (JSON/Parquet/HF)")
    reason: str
    raw: str = ""


# --- solve (MMOS: several verified paths per question, the most diverse kept) -------------


class CotSolution(BaseModel):
    """What the LLM returns for a `cot` path: steps in prose, final answer in \\boxed{}.

    Asked as free text (`from_text`), not JSON: a small model asked to put its reasoning
    inside a JSON string answers with a bare number (measured: ~20 tokens, no working, with
    Qwen2.5-Coder-0.5B; asked plainly, 206 tokens of working ending in the right answer)."""

    model_config = ConfigDict(extra="forbid")
    solution: str = Field(min_length=1, description="step-by-step solution ending in \\boxed{answer}")

    @classmethod
    def from_text(cls, text: str) -> "CotSolution":
        return cls(solution=text.strip())


_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


class ProgramSolution(BaseModel):
    """What the LLM returns for a `code` path (program of thought): asked as free text with
    the program in a ```python block (`from_text` takes the last complete block, else the
    whole reply)."""

    model_config = ConfigDict(extra="forbid")
    program: str = Field(min_length=1, description="a complete Python program that prints the final answer")

    @classmethod
    def from_text(cls, text: str) -> "ProgramSolution":
        blocks = [b for b in _FENCE.findall(text) if b.strip()]
        return cls(program=(blocks[-1] if blocks else text).strip() + "\n")


class SolveQuestion(BaseModel):
    """A question to solve, from any input: a seed, a generated or fused row, or a file."""

    id: str
    kind: str = Field(description="seed, concepts, fusion, variant or file")
    question: str
    gold: str | None = Field(None, description="gold final answer, if the input has one")
    gold_from: str | None = Field(None, description="where the gold came from: field name, '####', 'boxed'")
    own_answer: str | None = Field(None, description="a generated row's own answer (one vote)")
    source: str = Field("", description="input file (or 'store') the question came from")


class ProgramRun(BaseModel):
    """How a code path's program ran in the sandbox."""

    reason: Literal["ok", "crash", "timeout", "no_output", "over_limit"]
    detail: str = ""
    stdout: str = ""
    elapsed_s: float = 0.0
    isolation: Literal["bwrap", "process"] | None = Field(
        None, description="the sandbox that ran it; None on records written before it was stored")


class SolvePath(BaseModel):
    """One sampled reasoning path (a unit of LLM work), as sampled and as checked."""

    id: str = Field(description="hash of question id, style, path index, prompt version, model, temperature")
    question_id: str
    question_kind: str
    source: str = ""
    style: Literal["cot", "code"]
    index: int = Field(description="path index within (question, style); part of the cache key")
    status: Literal["ok", "failed"] = "ok"
    text: str = Field("", description="the solution (cot) or the program (code)")
    error: str | None = None
    raw: str | None = Field(None, description="raw model text when the reply never validated")
    model: str = ""
    prompt_version: str = ""
    temperature: float = 0.0
    usage: LLMUsage | None = None
    # filled in when checked
    answer: str | None = Field(None, description="extracted final answer")
    run: ProgramRun | None = Field(None, description="code paths: the sandbox run")
    correct: bool | None = Field(None, description="equivalent to the gold (or to the majority, without gold)")
    judge: str | None = Field(None, description="the judge's verdict and reason on this path's answer, when asked")


class SolveVerdict(BaseModel):
    """One question's verdict over its paths."""

    question_id: str
    question_kind: str
    source: str = ""
    question: str = ""
    gold: str | None = None
    gold_from: str | None = None
    own_answer: str | None = None
    method: Literal["gold", "vote"]
    paths: int = Field(description="paths sampled (ok replies)")
    answered: int = Field(description="paths with an extractable answer")
    votes: dict[str, int] = Field(default_factory=dict, description="answer (group representative) -> votes")
    majority: str | None = None
    agreement: float = Field(0.0, description="majority votes / all votes")
    correct: int = 0
    pass_rate: float = Field(0.0, description="correct paths / paths: a difficulty estimate")
    majority_correct: bool | None = Field(None, description="with gold: does the majority match it")
    verified: bool | None = Field(None, description="the rule's verdict as a flag: status == 'verified' (graphgen.status)")
    kept: list[str] = Field(default_factory=list, description="ids of the kept paths (minimal optimal set)")
    duplicates: int = Field(0, description="correct paths dropped as duplicates")
    status: Literal["verified", "unverified", "unverifiable"] | None = Field(
        None, description="the rule's verdict (graphgen.status); None only on records written before it existed")
    verified_by: Literal["gold", "vote"] | None = Field(None, description="what the rule checked against")
    status_reason: str = Field("", description="why, in one line (e.g. 'gold is option letter B but the question has no options')")
    judge: JudgeVerdict | None = Field(None, description="a model judge's verdict, stored beside the rule's (never replacing it)")
    calls: int = Field(0, description="paths paid for (not from the cache), over every run")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    check_problems: list[str] = Field(default_factory=list,
                                      description="answers that were not compared, and why (too long, check timed out)")
    isolation: str | None = Field(None, description="the sandbox its programs ran in (bwrap, process, or "
                                  "'bwrap+process' when reruns mixed them); None without a program run")


# --- check (issue 20: is a generated question well-posed?) -----------------------------------

AnswerType = Literal["integer", "decimal", "fraction", "expression", "interval", "set", "multiple_choice", "proof",
                     "other"]
ProblemType = Literal["regular", "proof", "multiple_choice", "yes_no", "invalid"]  # NeMo-Skills' classes


class QuestionCheckReply(BaseModel):
    """What the judge model returns for one question (`graphgen check`): the reason first, so
    a model reasons before it decides."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(description="one short sentence")
    well_posed: Literal["yes", "no"] = Field(description="complete, consistent and solvable as stated")
    single_answer: Literal["yes", "no"] = Field(description="exactly one final answer")
    answer_type: AnswerType
    problem_type: ProblemType


class QuestionCheck(BaseModel):
    """What `graphgen check` decided about one question, stored as row status beside solve's
    verdict and filter's decision (graphgen.status reads it; export leaves out `failed`).

    The rule's findings and the judge's reply are kept side by side: `rule` / `rule_answer_type`
    from the row's own text, `judge` as the model said it."""

    row_id: str
    row_kind: str = Field("row", description="concepts, fusion, variant, seed, or row (a file without kinds)")
    key: str = Field(description="hash of what decides the check (question, answer, prompt, model, mode): the unit id")
    status: Literal["passed", "failed", "unknown"] = Field(
        description="unknown: the judge gave no valid reply (never counted as passed; a rerun asks again)")
    reasons: list[str] = Field(default_factory=list, description="why it failed, as graphgen.status.LEFT_OUT codes "
                               "(empty_question, truncated, ill_posed, multiple_answers, proof, invalid, ...)")
    reason: str = Field("", description="the deciding reason in one line (the rule's finding or the judge's reason)")
    answer_type: AnswerType | None = Field(None, description="the rule's where it is sure, else the judge's")
    problem_type: ProblemType | None = Field(None, description="the judge's, unless a rule contradicts it (multiple choice with no options in the question: regular); None without a judge")
    well_posed: bool | None = None
    single_answer: bool | None = None
    rule: str | None = Field(None, description="the rule pre-check's finding (empty or truncated question), if any")
    rule_answer_type: AnswerType | None = Field(None, description="answer type read from the row's own answer string")
    judge: QuestionCheckReply | None = Field(None, description="the judge's reply, as given")
    model: str = Field("", description="judge model (empty: rules only)")
    prompt_version: str = ""


class PassRate(BaseModel):
    """One model's pass rate on one question (difficulty, as NeMo-Skills and Big-Math measure
    it): stored per (question, model), so two reference models never overwrite each other."""

    question_id: str
    model: str
    question_kind: str = ""
    paths: int = Field(description="paths sampled (ok replies)")
    correct: int = Field(description="paths whose answer matches the reference")
    pass_rate: float = Field(description="correct / paths")
    against: Literal["gold", "own_answer", "none"] = Field(
        description="the reference: the gold answer, the row's own answer, or none (pass rate 0)")


class FilterReason(BaseModel):
    """Why `graphgen filter` removed (or flagged) a row."""

    kind: Literal["duplicate", "near_duplicate", "semantic_duplicate", "contaminated", "paraphrase", "failed"]
    message: str = Field(description="the reason in one line, e.g. 'near duplicate of gen-1 (Jaccard 0.86)'")
    of: str | None = Field(None, description="duplicates: id of the kept row of the cluster")
    cluster: str | None = Field(None, description="duplicates: cluster id (the kept row's id)")
    similarity: float | None = Field(None, description="estimated Jaccard (near) or cosine (semantic, paraphrase)")
    benchmark: str | None = Field(None, description="contaminated / paraphrase: benchmark name")
    item_id: str | None = Field(None, description="contaminated / paraphrase: benchmark item id")
    ngram: str | None = Field(None, description="contaminated: the matched words as they appear in the row")
    ngrams: list[str] | None = Field(None, description="contaminated: every distinct n-gram the row shares with the item (up to 20)")
    coverage: float | None = Field(None, description="contaminated: share of the item's words the shared n-grams cover")
    match: Literal["ngram", "ngram-numbers", "contained", "contained-numbers", "one-word-changed"] | None = Field(
        None, description="ngram: an n-gram in common; ngram-numbers: the same with numbers masked; "
        "contained: the whole (short) item appears in the row; contained-numbers: the same with numbers masked; "
        "one-word-changed: a whole item of fewer than 2n words with one word changed in place")
    field: Literal["question", "solution"] | None = Field(None, description="contaminated: which text matched")
    judge: str | None = Field(None, description="paraphrase: the judge's answers in both orders (filter --judge)")


class FilterDecision(BaseModel):
    """What `graphgen filter` decided for one row, as stored in the workspace (graphgen.status
    reads it; export leaves out every row whose decision is not `kept`)."""

    row_id: str
    row_kind: str = Field("row", description="seed, concepts, fusion, variant, path, or row (a file without kinds)")
    decision: Literal["kept", "duplicate", "near_duplicate", "semantic_duplicate", "contaminated", "paraphrase",
                      "failed"]
    reason: FilterReason | None = Field(None, description="why it was removed (or, kept, flagged as a paraphrase)")


class RemovedRow(BaseModel):
    """One line of removed.jsonl: the reason and the row exactly as it was read."""

    id: str
    reason: FilterReason
    row: dict
