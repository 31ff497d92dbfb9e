"""What a server says about itself, and LLM settings that fit it.

    info = probe(settings.llm.base_url)          # ServerInfo, or None when it says nothing
    llm, notes = fit(settings.llm, info)         # concurrency, timeouts, token budgets

Where it asks:
- llama.cpp (also graphgen's own local server): GET /props (`total_slots`, the context of a
  slot in `default_generation_settings.n_ctx`) and GET /slots (each slot's `n_ctx`);
- vLLM: GET /v1/models (`max_model_len`);
- Ollama: POST /api/show for the model (`model_info["<arch>.context_length"]`).

What it changes (only settings the user did not set, in the file, environment or flags):
- concurrency = the server's slots. A request beyond them waits in the server's queue while
  the client's timeout runs, so a timeout would count from enqueue; with no more in flight
  than slots, every request is processed from the moment it is sent.
- max_tokens at most half a slot's context (prompt and reply share it); job_tokens within
  three attempts of that.
- a CPU server (llama.cpp) writes tens of tokens per second, so the request timeout is
  sized for a full reply at 5 tokens/s (at least 600 s), and the job timeout for three
  such attempts.
`fit` returns the notes it printed ("concurrency 2 (the server's slots)", ...).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field

__all__ = ["ServerInfo", "probe", "fit", "fit_cached"]

log = logging.getLogger("graphgen.llm")

_PROBE_TIMEOUT = 5.0
_SLOW_TOKENS_PER_S = 5.0


@dataclass
class ServerInfo:
    kind: str
    """llama.cpp, vllm or ollama"""
    slots: int | None = None
    ctx_per_slot: int | None = None
    model: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


def _root(base_url: str) -> str:
    u = base_url.rstrip("/")
    return u[: -len("/v1")] if u.endswith("/v1") else u


def _get(url: str, body: dict | None = None, key: str | None = None) -> dict | list | None:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=_PROBE_TIMEOUT) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def probe(base_url: str | None, model: str | None = None, api_key: str | None = None) -> ServerInfo | None:
    """Ask the server at `base_url` what it is; None when it says nothing we understand
    (hosted APIs, fakes), which leaves the settings as they are."""
    if not base_url:
        return None
    root = _root(base_url)
    props = _get(root + "/props", key=api_key)
    if isinstance(props, dict) and ("total_slots" in props or "default_generation_settings" in props):
        info = ServerInfo("llama.cpp", raw=props)
        info.slots = props.get("total_slots")
        gen = props.get("default_generation_settings") or {}
        info.ctx_per_slot = gen.get("n_ctx")
        info.model = props.get("model_alias") or props.get("model_path")
        slots = _get(root + "/slots", key=api_key)
        if isinstance(slots, list) and slots:
            info.slots = info.slots or len(slots)
            ctxs = [s.get("n_ctx") for s in slots if isinstance(s, dict) and s.get("n_ctx")]
            if ctxs:
                info.ctx_per_slot = min(ctxs)
        return info
    models = _get(base_url.rstrip("/") + "/models", key=api_key)
    data = models.get("data") if isinstance(models, dict) else None
    if isinstance(data, list):
        for m in data:
            if isinstance(m, dict) and m.get("max_model_len"):
                if model is None or m.get("id") == model or len(data) == 1:
                    return ServerInfo("vllm", ctx_per_slot=int(m["max_model_len"]), model=m.get("id"), raw=m)
        if model and any(isinstance(m, dict) and "ollama" in str(m.get("owned_by", "")).lower() or
                         str(m.get("owned_by", "")) == "library" for m in data):
            show = _get(root + "/api/show", {"model": model}, key=api_key)
            mi = show.get("model_info") if isinstance(show, dict) else None
            if isinstance(mi, dict):
                ctx = next((v for k, v in mi.items() if k.endswith(".context_length")), None)
                return ServerInfo("ollama", ctx_per_slot=int(ctx) if ctx else None, model=model, raw=mi)
    return None


def fit(llm, info: ServerInfo | None):
    """(LLM settings fitted to `info`, the notes explaining each change). Settings the user
    set explicitly (`llm.model_fields_set`) are kept."""
    if info is None:
        return llm, []
    chosen = set(llm.model_fields_set)
    upd: dict = {}
    notes: list[str] = []
    if info.slots and "concurrency" not in chosen and llm.concurrency != info.slots:
        upd["concurrency"] = info.slots
        notes.append(f"concurrency {info.slots} (the server's slots; more would queue there while their timeouts run)")
    max_tokens = llm.max_tokens
    if info.ctx_per_slot and "max_tokens" not in chosen:
        cap = max(256, info.ctx_per_slot // 2)
        if max_tokens is None or max_tokens > cap:
            max_tokens = upd["max_tokens"] = cap
            notes.append(f"max_tokens {cap} (half of a slot's {info.ctx_per_slot}-token context)")
    if max_tokens and "job_tokens" not in chosen and info.ctx_per_slot:
        budget = 3 * (max_tokens + info.ctx_per_slot // 2)
        if llm.job_tokens is None or llm.job_tokens > budget:
            upd["job_tokens"] = budget
            notes.append(f"job_tokens {budget} (three attempts)")
    if info.kind == "llama.cpp":
        reply = max_tokens or 1024
        timeout = max(600.0, reply / _SLOW_TOKENS_PER_S)
        if "timeout" not in chosen and llm.timeout < timeout:
            upd["timeout"] = timeout
            notes.append(f"timeout {timeout:g}s per request, from send (a {reply}-token reply at "
                         f"{_SLOW_TOKENS_PER_S:g} tokens/s)")
        if "job_timeout" not in chosen and llm.job_timeout is not None and llm.job_timeout < 3 * timeout:
            upd["job_timeout"] = 3 * timeout
            notes.append(f"job_timeout {3 * timeout:g}s (three attempts)")
    if not upd:
        return llm, []
    fitted = llm.model_copy(update=upd)
    fitted.__pydantic_fields_set__ = chosen  # what the user set stays the user's
    what = f"{info.kind} server" + (f", {info.slots} slots" if info.slots else "") + (
        f", {info.ctx_per_slot} context tokens per slot" if info.ctx_per_slot else "")
    if (llm.base_url, tuple(notes)) not in _told:
        _told.add((llm.base_url, tuple(notes)))
        log.warning("%s: %s", what, "; ".join(notes))
    return fitted, notes


_told: set = set()
_probed: dict = {}


def fit_cached(llm):
    """`fit(llm, probe(...))`, asking each server once per process (a stage may open several
    clients); prints its choices once."""
    key = (llm.base_url, llm.model)
    if key not in _probed:
        key_ = llm.api_key
        secret = key_.get_secret_value() if hasattr(key_, "get_secret_value") else (key_ or None)
        _probed[key] = probe(llm.base_url, llm.model, secret)
    return fit(llm, _probed[key])[0]
