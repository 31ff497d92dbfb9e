"""The one LLM client every stage uses: a thin layer over a transport that adds the
response cache, concurrency / RPM / TPM limits, retries with backoff that honour
Retry-After, structured output with re-asks, and the one tally of LLM work.

    client = LLMClient(settings.llm)
    result = await client.complete(messages, ExtractionOutput)
    if result.value is not None: ...          # a validated ExtractionOutput
    else: record_failure(result.error, result.raw)
    client.tally                               # ok / failed / cached / tokens / cost

The JSON Schema comes from the output model (`graphgen.llm.structured`); the wire format
from the transport (`graphgen.llm.transport`). Every job is bounded: `max_retries`
transport retries per request, `max_reasks` re-asks, and over all of them `job_timeout`
seconds and `job_tokens` tokens. Every token paid is counted and priced, whether the job
succeeds, fails, or is cut short by a fatal error or an interrupt.

The API key goes to the transport only; raw replies and error texts are scrubbed of it
(`graphgen.scrub`) before anything can write them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from graphgen.config import LLMSettings
from graphgen.errors import LLMFatalError
from graphgen.llm.cache import ResponseCache, cache_key
from graphgen.llm.ratelimit import RateLimiter, estimate_tokens
from graphgen.llm.structured import (
    MODES,
    SURROGATE,
    OutputSchema,
    ReplyError,
    dialect_from_models,
    dialect_from_refusal,
    is_free_text,
    looks_like_format_refusal,
    output_schema,
    parse_reply,
    request_fields,
)
from graphgen.llm.transport import (
    OPENAI_URL,
    Transport,
    TransportError,
)
from graphgen.records import LLMUsage
from graphgen.scrub import scrub
from graphgen.stage import LLMTally

__all__ = ["LLMClient", "LLMResult", "LLMFatalError", "TRUNCATED", "load_schema", "read_reply", "repeating"]

log = logging.getLogger("graphgen.llm")

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 60.0
_RETRY_AFTER_CAP = 600.0


def load_schema(name: str, model: type[BaseModel]) -> dict:
    """The JSON Schema for an LLM output model (`name` is ignored: the model decides).
    Kept for callers written before schemas were derived from the model."""
    return output_schema(model).schema


@dataclass(slots=True)
class LLMResult:
    value: BaseModel | None
    raw: str
    """the last reply's text, scrubbed of secrets and broken Unicode"""
    error: str | None
    usage: LLMUsage
    """tokens and cost of every attempt of this job"""
    attempts: int = 0
    """model replies requested: 1 + re-asks (0 for a cache hit)"""
    retries: int = 0
    """transport-level retries (429, 5xx, timeouts, dropped connections)"""

    @property
    def ok(self) -> bool:
        return self.value is not None

    @property
    def cached(self) -> bool:
        return self.usage.cached


class _CallFailed(Exception):
    def __init__(self, reason: str, retries: int):
        super().__init__(reason)
        self.reason = reason
        self.retries = retries


def _clean_text(text: str) -> str:
    """Reply text safe to write anywhere: lone UTF-16 surrogates (half an emoji, as some
    servers send) become U+FFFD, secrets become ***."""
    if SURROGATE.search(text):
        text = SURROGATE.sub("\ufffd", text)
    return scrub(text)


class LLMClient:
    """An async client for structured outputs. Safe to share between tasks of one event
    loop; used from a new loop it opens a fresh connection pool.

    `transport` is a `Transport`, or the HTTP library ("auto", "aiohttp", "httpx") for the
    one `settings.provider` opens (`graphgen.llm.providers`: OpenAI-compatible by default)."""

    def __init__(self, settings: LLMSettings, *, transport: Transport | str = "auto"):
        if isinstance(transport, str):
            from graphgen.llm.providers import open_transport

            transport, settings = open_transport(settings, http=transport)
        self.settings = settings
        self.model = settings.model
        self.transport: Transport = transport
        self.mode: str = settings.structured_output
        self.dialect: str | None = None if settings.json_object_schema == "auto" else settings.json_object_schema
        if self.dialect is None and self.transport.base_url.rstrip("/") == OPENAI_URL:
            self.dialect = "none"  # OpenAI takes json_schema; nothing to probe
        self.limiter = RateLimiter(settings.rpm, settings.tpm)
        self.cache: ResponseCache | None = ResponseCache(settings.cache_path) if settings.cache_path else None
        price = settings.price_for(settings.model)
        self._price_in = price.input / 1e6 if price else 0.0
        self._price_out = price.output / 1e6 if price else 0.0
        self.tally = LLMTally(cost_known=price is not None)
        # transport diagnostics (not part of the tally: they are not units of work)
        self.http_calls = 0
        self.retries = 0
        self.reasks = 0
        self.rejected = 0  # valid replies a job's check rejected (then asked again or failed)
        self._answered = False  # has any server reply arrived in this client's life?
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._inflight: dict[str, asyncio.Future] = {}
        self._probe: asyncio.Future | None = None

    def __repr__(self) -> str:
        return (f"LLMClient(model={self.model!r}, base_url={self.settings.base_url!r}, "
                f"mode={getattr(self, 'mode', None)!r}, concurrency={self.settings.concurrency})")

    @property
    def totals(self) -> LLMTally:
        """Old name of `tally`."""
        return self.tally

    # -- plumbing ---------------------------------------------------------------------------

    def _enter_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._sem = asyncio.Semaphore(max(1, self.settings.concurrency))
            self._inflight = {}
            self._probe = None
            self.limiter.reset_loop()

    async def aclose(self) -> None:
        self._loop = None
        await self.transport.aclose()

    def close(self) -> None:
        """Close the cache (and forget the connection pool)."""
        self._loop = None
        if self.cache is not None:
            self.cache.close()

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self._price_in + completion_tokens * self._price_out

    def _usage(self, pt: int, ct: int) -> LLMUsage:
        return LLMUsage(model=self.model, prompt_tokens=pt, completion_tokens=ct, cost_usd=self.cost(pt, ct))

    def cache_key_for(self, messages: list[dict], output: type[BaseModel]) -> str:
        s = self.settings
        spec = output_schema(output)
        return cache_key(
            model=self.model, messages=messages, schema_name=spec.name, schema=spec.schema,
            mode="free_text" if is_free_text(output) else s.structured_output, temperature=s.temperature, max_tokens=s.max_tokens, seed=s.seed,
            endpoint=getattr(self.transport, "base_url", None),
        )

    def cached_result(self, messages: list[dict], output: type[BaseModel]) -> tuple[str | None, LLMResult | None]:
        """(cache key, the cached result or None); (None, None) without a cache. For engines
        that answer cache hits locally before shipping the rest elsewhere (graphgen.engine).
        Not counted in the tally: the engine counts what it delivers."""
        if self.cache is None:
            return None, None
        key = self.cache_key_for(messages, output)
        return key, self._from_cache(key, output)

    def remember(self, key: str, result: LLMResult) -> None:
        """Cache a validated result computed elsewhere (a Ray worker, a batch) under `key`."""
        if self.cache is not None and result.value is not None and not result.usage.cached:
            self.cache.put(key, model=result.usage.model or self.model,
                           schema_name=output_schema(type(result.value)).name,
                           value_json=result.value.model_dump_json(), raw=result.raw,
                           prompt_tokens=result.usage.prompt_tokens,
                           completion_tokens=result.usage.completion_tokens)

    # -- the public call --------------------------------------------------------------------

    async def complete(self, messages: list[dict], output: type[BaseModel], *,
                       check=None) -> LLMResult:
        """Ask for one `output` object. Never raises for a bad reply or a failed request
        (the result carries `error` and `raw`); raises LLMFatalError when no request can
        succeed (bad key, wrong URL or model, nothing listening). The JSON Schema is derived
        from `output`."""
        self._enter_loop()
        spec = output_schema(output)
        if self.cache is None:
            result = await self._ask(messages, output, spec, None, check)
        else:
            key = self.cache_key_for(messages, output)
            result = self._from_cache(key, output)
            if result is None:
                # the same request already in flight (duplicate seeds in one run): wait for
                # it, then take its reply from the cache instead of paying twice
                waiter = self._inflight.get(key)
                if waiter is not None:
                    await asyncio.shield(waiter)
                    result = self._from_cache(key, output)
            if result is None:
                fut = self._loop.create_future()
                self._inflight[key] = fut
                try:
                    result = await self._ask(messages, output, spec, key, check)
                finally:
                    if self._inflight.get(key) is fut:
                        del self._inflight[key]
                    fut.set_result(None)
        self.tally.record(result.usage, result.ok)
        return result

    def _from_cache(self, key: str, output: type[BaseModel]) -> LLMResult | None:
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is None:
            return None
        try:
            value = output.model_validate_json(hit.value_json)
        except ValueError:
            return None  # the output model changed since: treat as a miss
        usage = LLMUsage(model=self.model, prompt_tokens=hit.prompt_tokens,
                         completion_tokens=hit.completion_tokens, cost_usd=0.0, cached=True)
        return LLMResult(value, hit.raw, None, usage, 0, 0)

    async def _ask(self, messages: list[dict], output: type[BaseModel], spec: OutputSchema,
                   key: str | None, check=None) -> LLMResult:
        """One job: a reply, re-asked while invalid or truncated, within the job's bounds."""
        s = self.settings
        deadline = time.monotonic() + s.job_timeout if s.job_timeout else None
        max_tokens = s.max_tokens
        free = is_free_text(output)
        convo = list(messages)
        pt = ct = retries = attempts = 0
        raw = ""
        error: str | None = None
        value: BaseModel | None = None
        try:
            for reask in range(s.max_reasks + 1):
                attempts += 1
                try:
                    data, r = await self._chat(convo, spec, max_tokens, deadline, free)
                except _CallFailed as exc:
                    retries += exc.retries
                    error = exc.reason
                    break
                retries += r
                u = data.get("usage") or {}
                pt += u.get("prompt_tokens") or 0
                ct += u.get("completion_tokens") or 0
                choice = data["choices"][0] if data["choices"] else {}
                content = (choice.get("message") or {}).get("content") or ""
                # scrubbed before parsing: a secret the server echoed inside a valid reply must
                # not reach the value, the cache, the store or any output file either
                raw = scrub(content if isinstance(content, str) else str(content))
                if choice.get("finish_reason") == "length":
                    # never resend the cut text with a doubled budget (a looping reply then
                    # holds a slot for ever longer): a fresh attempt within the same budget,
                    # unless the reply loops (the note on length makes it a new request even at temperature 0)
                    error = TRUNCATED
                    loop = repeating(raw)
                    if loop:
                        error = f"{TRUNCATED}: the reply loops (repeats {loop!r}); not asked again"
                        break
                    correction = None
                else:
                    try:
                        value = parse_reply(raw, output)
                    except ReplyError as exc:
                        error = str(exc)
                        correction = (f"Your reply was not valid ({error}). Answer again." if free else
                                      f"Your reply was not valid ({error}). Reply again with only a JSON "
                                      f"object that matches the required schema.")
                    else:
                        rejected = check(value) if check is not None else None
                        if rejected is None:
                            error = None
                            break
                        self.rejected += 1
                        value, error = None, f"rejected: {rejected}"
                        correction = f"That reply was rejected: {rejected}. Try again."
                if reask == s.max_reasks:
                    break
                if s.job_tokens and pt + ct >= s.job_tokens:
                    error = f"{error}; stopped re-asking: the job spent its {s.job_tokens:,} tokens (--job-tokens)"
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    error = f"{error}; stopped re-asking: the job took its {s.job_timeout:g}s (--job-timeout)"
                    break
                if max_tokens and s.job_tokens and s.job_tokens - pt - ct < max_tokens:
                    error = f"{error}; stopped re-asking: a fresh attempt would not fit the job's {s.job_tokens:,} tokens (--job-tokens)"
                    break
                self.reasks += 1
                if correction is None:  # a fresh attempt: the original request, with a word on length
                    convo = _with_note(messages, f"Keep the reply short: it must fit in {max_tokens} tokens."
                                       if max_tokens else "Keep the reply short.")
                else:
                    convo = convo + [{"role": "assistant", "content": _clean_text(raw)},
                                     {"role": "user", "content": correction}]
        except BaseException:
            # a fatal error or an interrupt ends the job: the tokens it already paid count
            if pt or ct:
                self.tally.record(self._usage(pt, ct), ok=False)
            raise
        raw = _clean_text(raw)
        usage = self._usage(pt, ct)
        if value is None:
            if attempts > 1 and not error.startswith("http"):
                error = f"{error} (after {attempts} attempts)"
            return LLMResult(None, raw, scrub(error), usage, attempts, retries)
        if key is not None and self.cache is not None:
            self.cache.put(key, model=self.model, schema_name=spec.name,
                           value_json=value.model_dump_json(), raw=raw,
                           prompt_tokens=pt, completion_tokens=ct)
        return LLMResult(value, raw, None, usage, attempts, retries)

    def request_body(self, messages: list[dict], output: type[BaseModel]) -> dict:
        """The chat-completion body `complete` would send first for `messages` (a Batch API
        request line): the current structured-output mode, the schema from `output`."""
        s = self.settings
        fields = ({"messages": messages} if is_free_text(output)
                  else request_fields(self.mode, self.dialect or "none", output_schema(output), messages))
        b: dict[str, Any] = {"model": self.model, "temperature": s.temperature, **fields}
        if s.seed is not None:
            b["seed"] = s.seed
        if s.max_tokens:
            b["max_tokens"] = s.max_tokens
        return b

    # -- one request, with retries and structured-output fallback ----------------------------

    async def _chat(self, convo: list[dict], spec: OutputSchema, max_tokens: int | None,
                    deadline: float | None, free: bool = False) -> tuple[dict, int]:
        s = self.settings

        async def body() -> dict:
            mode = self.mode
            if free:
                fields: dict[str, Any] = {"messages": convo}
            else:
                if mode == "json_object" and self.dialect is None:
                    await self._detect_dialect()
                fields = request_fields(mode, self.dialect or "none", spec, convo)
            b: dict[str, Any] = {"model": self.model, "temperature": s.temperature, **fields}
            if s.seed is not None:
                b["seed"] = s.seed
            if max_tokens:
                b["max_tokens"] = max_tokens
            return b

        data, retries = await self._post("/chat/completions", body, estimate_tokens(convo, max_tokens),
                                         deadline, chat=True)
        if not isinstance(data.get("choices"), list):
            raise _CallFailed("http 200 with a body that is not a chat completion", retries)
        return data, retries

    async def _post(self, path: str, make_body, est: int, deadline: float | None, *,
                    chat: bool = False) -> tuple[dict, int]:
        """POST with the limiter, retries and (for chat) response-format fallback; returns
        (reply, retries). Raises _CallFailed when the request cannot succeed, LLMFatalError
        when no request can."""
        s = self.settings
        limiter = self.limiter
        retries = 0
        while True:
            delay: float | None = None
            try:
                async with self._sem:
                    # built here, not before the wait: a request queued behind the one that
                    # found the format refused goes out in the new mode
                    mode = self.mode
                    b = await make_body()
                    await limiter.acquire(est)
                    self.http_calls += 1
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left < s.timeout:
                        if left <= 0:
                            raise asyncio.TimeoutError
                        data = await asyncio.wait_for(self.transport.post(path, b), left)
                    else:
                        data = await self.transport.post(path, b)
                self._answered = True
                usage = data.get("usage")
                if isinstance(usage, dict) and limiter.tpm:
                    limiter.correct(est, (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0))
                return data, retries
            except asyncio.TimeoutError:
                raise _CallFailed(f"job time limit of {s.job_timeout:g}s reached (--job-timeout)", retries) from None
            except TransportError as exc:
                if exc.kind == "status":
                    self._answered = True
                    status = exc.status or 0
                    if chat and mode != "text" and looks_like_format_refusal(status, exc.message):
                        self._downgrade(mode, status, exc.message)
                        continue
                    self._raise_if_fatal(exc)
                    reason = f"http {status}: {exc.message}"
                    if status not in _RETRY_STATUS and status < 500:
                        raise _CallFailed(reason, retries) from None
                    delay = exc.retry_after
                    if status == 429 and delay:
                        limiter.pause_until(time.monotonic() + min(delay, _RETRY_AFTER_CAP))
                elif exc.kind in ("refused", "dns") and not self._answered:
                    raise LLMFatalError(
                        f"{exc.message}: nothing answers there; start the server or fix --base-url "
                        "(env OPENAI_BASE_URL)") from None
                elif exc.kind == "bad_response":
                    raise _CallFailed(f"http bad response: {exc.message}", retries) from None
                else:
                    reason = f"http {exc.message}" if exc.kind == "timeout" else exc.message
            if retries >= s.max_retries:
                raise _CallFailed(f"{reason} (gave up after {retries} retries)", retries)
            if delay is None:
                delay = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** retries))
            else:
                delay = min(delay, _RETRY_AFTER_CAP) + random.uniform(0, 0.1)
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise _CallFailed(f"{reason} (job time limit of {s.job_timeout:g}s reached after "
                                  f"{retries} retries; --job-timeout)", retries)
            retries += 1
            self.retries += 1
            log.info("retry %d/%d in %.2fs: %s", retries, s.max_retries, delay, reason)
            await asyncio.sleep(delay)

    def _raise_if_fatal(self, exc: TransportError) -> None:
        status, base = exc.status, self.transport.base_url
        where = f"HTTP {status} from {exc.url or base}: {exc.message}"
        if status in (401, 403):
            env = getattr(self.transport, "key_env", "OPENAI_API_KEY")
            raise LLMFatalError(f"{where}; check the API key in {env} (or llm.api_key in the config)")
        if status == 404:
            if "model" in exc.message.lower():
                raise LLMFatalError(f"{where}; check --model (env GRAPHGEN_MODEL)")
            hint = ("; OpenAI-compatible base URLs usually end in /v1: try --base-url "
                    f"{base}/v1" if not base.endswith("/v1") else "; check --base-url (env OPENAI_BASE_URL)")
            raise LLMFatalError(where + hint)

    def _downgrade(self, mode: str, status: int, message: str) -> None:
        if self.mode != mode:
            return  # another task already downgraded
        new = MODES[MODES.index(mode) + 1]
        if new == "json_object" and self.settings.json_object_schema == "auto":
            self.dialect = dialect_from_refusal(message) or self.dialect
        self.mode = new
        how = ""
        if new == "json_object" and self.dialect not in (None, "none"):
            how = f" with the schema sent {self.dialect}-style"
        first = message.strip().splitlines()[-1].strip() if message.strip() else ""
        log.warning("%s refused response_format %s (HTTP %s: %s); using %s%s for the rest of this run",
                    self.transport.base_url, mode, status, first[:120], new, how)

    async def _detect_dialect(self) -> None:
        """Ask GET /models once which server this is (llama.cpp, vLLM, Ollama)."""
        if self._probe is None:
            self._probe = self._loop.create_future()
            try:
                listing = await self.transport.get("/models")
                models = listing.get("data") or listing.get("models") or []
                self.dialect = self.dialect or dialect_from_models(models if isinstance(models, list) else [])
            except (TransportError, AttributeError):
                self.dialect = self.dialect or "none"
            finally:
                self._probe.set_result(None)
            if self.dialect != "none":
                log.warning("json_object mode: sending the schema %s-style (llm.json_object_schema=auto)", self.dialect)
        else:
            await asyncio.shield(self._probe)

    # -- embeddings -------------------------------------------------------------------------

    async def aembed(self, texts: list[str], model: str, dimensions: int | None = None) -> list[list[float]]:
        """Embeddings of `texts` (one request) through the same transport, limiter, retries
        and tally as chat. Raises LLMFatalError, or RuntimeError when the request fails."""
        self._enter_loop()
        body: dict[str, Any] = {"model": model, "input": texts}
        if dimensions:
            body["dimensions"] = dimensions

        async def make_body() -> dict:
            return body

        est = sum(len(t) for t in texts) // 4 + 1
        deadline = time.monotonic() + self.settings.job_timeout if self.settings.job_timeout else None
        try:
            data, _ = await self._post("/embeddings", make_body, est, deadline)
        except _CallFailed as exc:
            self.tally.record(LLMUsage(model=model), ok=False)
            raise RuntimeError(exc.reason) from None
        rows = sorted(data.get("data") or [], key=lambda d: d.get("index", 0))
        pt = int((data.get("usage") or {}).get("prompt_tokens") or 0)
        price = self.settings.price_for(model)
        self.tally.record(LLMUsage(model=model, prompt_tokens=pt,
                                   cost_usd=pt * price.input / 1e6 if price else 0.0), ok=True)
        if price is None:
            self.tally.cost_known = False
        return [d.get("embedding") for d in rows]

    # -- sync convenience -------------------------------------------------------------------

    def complete_sync(self, messages: list[dict], output: type[BaseModel]) -> LLMResult:
        """Blocking single call (scripts; not for bulk work: use graphgen.runner.run_jobs)."""

        async def go():
            try:
                return await self.complete(messages, output)
            finally:
                await self.aclose()

        return asyncio.run(go())


TRUNCATED = "truncated reply (finish_reason=length)"


def _with_note(messages: list[dict], note: str) -> list[dict]:
    """`messages` with `note` added to the last user message (a fresh attempt, not a re-ask)."""
    out = list(messages)
    for i in range(len(out) - 1, -1, -1):
        if out[i].get("role") == "user" and isinstance(out[i].get("content"), str):
            out[i] = {**out[i], "content": out[i]["content"] + "\n\n" + note}
            break
    return out


def repeating(text: str, window: int = 240, n: int = 6) -> str | None:
    """The repeated phrase when the end of `text` loops (under half of the word n-grams of its
    last `window` words are distinct: a model stuck in a cycle), else None."""
    words = text.split()[-window:]
    if len(words) < 8 * n:
        return None
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if len(set(grams)) >= len(grams) / 2:
        return None
    from collections import Counter

    gram, _ = Counter(grams).most_common(1)[0]
    return " ".join(gram)[:60]


def read_reply(resp: dict, output: type[BaseModel]) -> tuple[BaseModel | None, str, str | None]:
    """(validated value or None, raw text, error) from one chat completion body (online or
    a Batch API output line); the same checks as an online reply (`structured.parse_reply`:
    broken Unicode, extra fields). The raw text is scrubbed of secrets and broken Unicode."""
    choices = resp.get("choices") or []
    choice = choices[0] if choices else {}
    content = (choice.get("message") or {}).get("content") or ""
    raw = scrub(content if isinstance(content, str) else json.dumps(content))  # before parsing (see above)
    if choice.get("finish_reason") == "length":
        return None, _clean_text(raw), TRUNCATED
    try:
        return parse_reply(raw, output), _clean_text(raw), None
    except ReplyError as exc:
        return None, _clean_text(raw), scrub(str(exc))
