"""Structured output: the JSON Schema of an output model, how to ask a server for it, and
how to read the reply back into the model.

The schema is derived from the pydantic output model (`output_schema(model)`); jobs carry
the model, never a schema name. The name sent as `json_schema.name` (and kept in the cache
key) is the model's entry in `graphgen.schemas.SCHEMAS` when it has one (so cache keys and
the checked-in `schema/*.json` stay what they were), else the model's class name.

Modes, best first: ``json_schema`` (OpenAI structured outputs), ``json_object`` (JSON mode:
the schema goes into the prompt, and also to the server in the form its dialect accepts:
llama.cpp ``response_format.schema``, vLLM ``guided_json``, Ollama ``format``), ``text``
(schema in the prompt only). Replies are parsed and validated whatever the mode; fields
the model adds beyond the schema are ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

from graphgen.llm.jsonrepair import JSONRepairError, parse_json_object

__all__ = [
    "MODES", "DIALECTS", "OutputSchema", "ReplyError", "output_schema", "request_fields",
    "parse_reply", "is_free_text", "looks_like_format_refusal", "dialect_from_refusal", "dialect_from_models",
]

MODES = ("json_schema", "json_object", "text")
DIALECTS = ("auto", "none", "llama.cpp", "vllm", "ollama")


@dataclass(frozen=True, eq=False)  # hashed by identity: one per output model
class OutputSchema:
    name: str
    schema: dict
    strict: bool


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@lru_cache(maxsize=None)
def output_schema(model: type[BaseModel]) -> OutputSchema:
    """The JSON Schema an LLM reply must match, derived from `model`. Meta keys ($schema,
    $id) are dropped because structured-output endpoints reject or ignore them."""
    from graphgen.schemas import SCHEMAS

    target = f"{model.__module__}:{model.__qualname__}"
    name = next((n for n, ref in SCHEMAS.items() if ref == target), None) or _snake(model.__name__)
    schema = {k: v for k, v in model.model_json_schema().items() if k not in ("$schema", "$id")}
    return OutputSchema(name, schema, _strict_compatible(schema))


def _strict_compatible(schema: Any) -> bool:
    """OpenAI strict mode needs every object closed and every property required."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            props = schema.get("properties", {})
            if schema.get("additionalProperties", True) is not False:
                return False
            if set(schema.get("required", [])) != set(props):
                return False
        return all(_strict_compatible(v) for v in schema.values())
    if isinstance(schema, list):
        return all(_strict_compatible(v) for v in schema)
    return True


# --- asking --------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _json_schema_format(spec: OutputSchema) -> dict:
    return {"type": "json_schema", "json_schema": {"name": spec.name, "schema": spec.schema, "strict": spec.strict}}


def request_fields(mode: str, dialect: str, spec: OutputSchema, convo: list[dict]) -> dict:
    """The request-body fields (messages, response_format, ...) for one call in `mode`.

    `dialect` says how this server takes a schema in json_object mode: "llama.cpp"
    (response_format {"type": "json_object", "schema": ...}, also llama-cpp-python),
    "vllm" (guided_json), "ollama" (format), or "none" (prompt only)."""
    if mode == "json_schema":
        return {"messages": convo, "response_format": _json_schema_format(spec)}
    fields: dict[str, Any] = {"messages": _with_schema_instruction(convo, spec.schema)}
    if mode == "json_object":
        if dialect == "llama.cpp":
            fields["response_format"] = {"type": "json_object", "schema": spec.schema}
        elif dialect == "vllm":
            fields["response_format"] = {"type": "json_object"}
            fields["guided_json"] = spec.schema
        elif dialect == "ollama":  # Ollama's own API field; its /v1 maps json_object to format "json"
            fields["response_format"] = {"type": "json_object"}
            fields["format"] = spec.schema
        else:
            fields["response_format"] = {"type": "json_object"}
    return fields


def _with_schema_instruction(convo: list[dict], schema: dict) -> list[dict]:
    note = ("Reply with a single JSON object (no prose, no markdown) that matches this JSON Schema:\n"
            + json.dumps(schema, separators=(",", ":")))
    if convo and convo[0].get("role") == "system" and isinstance(convo[0].get("content"), str):
        return [{**convo[0], "content": convo[0]["content"] + "\n\n" + note}] + convo[1:]
    return [{"role": "system", "content": note}] + convo


# --- servers that refuse a mode --------------------------------------------------------------

# What servers say when they do not take a response_format, whatever the HTTP status
# (llama-cpp-python answers 500 with a pydantic message; vLLM and OpenAI 400; others 422).
_REFUSAL = re.compile(
    r"response_format|json_schema|json_object|input should be 'text'|structured output|guided|grammar",
    re.IGNORECASE,
)


def looks_like_format_refusal(status: int, message: str) -> bool:
    """Did the server refuse the response format (rather than fail for another reason)?"""
    return status in (400, 404, 415, 422, 500, 501) and bool(_REFUSAL.search(message or ""))


def dialect_from_refusal(message: str) -> str | None:
    """llama-cpp-python's validation message names its own format ('text' or 'json_object'),
    which takes a `schema` next to the type."""
    return "llama.cpp" if "input should be 'text' or 'json_object'" in (message or "").lower() else None


def dialect_from_models(models: list[dict]) -> str:
    """Guess the json_object dialect from a GET /models reply (`owned_by`)."""
    owners = " ".join(str(m.get("owned_by", "")) for m in models if isinstance(m, dict)).lower()
    if "llamacpp" in owners or "llama.cpp" in owners:
        return "llama.cpp"
    if "vllm" in owners:
        return "vllm"
    if "ollama" in owners or "library" in owners:
        return "ollama"
    return "none"


# --- reading the reply -----------------------------------------------------------------------


class ReplyError(ValueError):
    """A reply that is not a valid output object; the message says why, in one line."""


SURROGATE = re.compile("[\ud800-\udfff]")
# a surrogate as a character, or as a JSON escape inside the reply's own JSON text
_MAYBE_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")


def _has_surrogate(data: Any) -> bool:
    if isinstance(data, str):
        return SURROGATE.search(data) is not None
    if isinstance(data, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in data.items())
    if isinstance(data, list):
        return any(_has_surrogate(v) for v in data)
    return False


def is_free_text(model: type[BaseModel]) -> bool:
    """Output models with a `from_text` classmethod are asked in plain text (no JSON, no
    response_format, whatever the structured-output mode) and read back by it: structured
    output only where the structure is the point (reasoning paths are prose)."""
    return callable(getattr(model, "from_text", None))


def parse_reply(raw: str, model: type[BaseModel]) -> BaseModel:
    """The validated output object in `raw` (fences, prose and small JSON damage repaired).
    Fields the model added beyond the schema are dropped, not held against the reply.
    Free-text models (`is_free_text`) are built from the text itself."""
    if is_free_text(model):
        if _MAYBE_SURROGATE.search(raw) and SURROGATE.search(raw):
            raise ReplyError("broken Unicode in the reply (a lone UTF-16 surrogate such as \\ud83d)")
        try:
            return model.from_text(raw)
        except ValidationError as exc:
            raise ReplyError("empty reply: " + _short_errors(exc)) from None
    try:
        data = parse_json_object(raw)
    except JSONRepairError as exc:
        raise ReplyError(f"invalid JSON: {exc}") from None
    if _MAYBE_SURROGATE.search(raw) and _has_surrogate(data):  # half an emoji: not storable text
        raise ReplyError("broken Unicode in the reply (a lone UTF-16 surrogate such as \\ud83d)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        extra = [e["loc"] for e in errors if e.get("type") == "extra_forbidden"]
        if not extra or len(extra) != len(errors):
            raise ReplyError("schema validation failed: " + _short_errors(exc)) from None
    for loc in extra:
        _drop(data, loc)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ReplyError("schema validation failed: " + _short_errors(exc)) from None


def _drop(data: Any, loc: tuple) -> None:
    *path, last = loc
    for part in path:
        data = data[part]
    if isinstance(data, dict):
        data.pop(last, None)


def _short_errors(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {e.get('msg')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
