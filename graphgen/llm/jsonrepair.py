"""Robust JSON-from-model-text parsing.

Models wrap JSON in markdown fences, add prose around it, leave trailing commas or use
single quotes. `parse_json_object` handles exactly those cases and nothing riskier: it never
closes a truncated object or invents values. Anything else raises `JSONRepairError`, and the
caller re-asks the model.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["JSONRepairError", "parse_json_object", "find_json_object", "iter_json_objects", "repair_json"]

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|json5)?[ \t]*\r?\n?(.*?)```", re.DOTALL)


class JSONRepairError(ValueError):
    """The text holds no complete JSON object that can be parsed safely."""


def iter_json_objects(text: str):
    """Yield each top-level balanced `{...}` in text, in order (string-aware, both quote
    styles). Stops at the first unbalanced one: a truncated object is never completed."""
    start = text.find("{")
    while start != -1:
        depth = 0
        quote: str | None = None
        escaped = False
        end = -1
        for i in range(start, len(text)):
            c = text[i]
            if quote:
                if escaped:
                    escaped = False
                elif c == "\\":
                    escaped = True
                elif c == quote:
                    quote = None
                continue
            if c == '"' or (c == "'" and _opens_single_quote(text, i)):
                quote = c
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    end = i
                    break
        if end == -1:
            return
        yield text[start : end + 1]
        start = text.find("{", end + 1)


def find_json_object(text: str) -> str | None:
    """The first balanced `{...}` in text, or None."""
    return next(iter_json_objects(text), None)


def _opens_single_quote(text: str, i: int) -> bool:
    """A single quote starts a string only where JSON expects a value or key."""
    j = i - 1
    while j >= 0 and text[j] in " \t\r\n":
        j -= 1
    return j >= 0 and text[j] in "{[,:"


def repair_json(candidate: str) -> str:
    """Fix trailing commas and single-quoted strings outside of string literals; also
    Python-style True/False/None literals. Returns the repaired text."""
    out: list[str] = []
    i, n = 0, len(candidate)
    while i < n:
        c = candidate[i]
        if c == '"':
            j = i + 1
            while j < n:
                if candidate[j] == "\\":
                    j += 2
                    continue
                if candidate[j] == '"':
                    break
                j += 1
            out.append(candidate[i : j + 1])
            i = j + 1
            continue
        if c == "'" and _opens_single_quote(candidate, i):
            j = i + 1
            buf: list[str] = []
            while j < n and candidate[j] != "'":
                ch = candidate[j]
                if ch == "\\" and j + 1 < n:
                    nxt = candidate[j + 1]
                    buf.append("'" if nxt == "'" else ch + nxt)
                    j += 2
                    continue
                buf.append('\\"' if ch == '"' else ch)
                j += 1
            out.append('"' + "".join(buf) + '"')
            i = j + 1
            continue
        if c == ",":
            j = i + 1
            while j < n and candidate[j] in " \t\r\n":
                j += 1
            if j < n and candidate[j] in "}]":
                i += 1  # trailing comma: drop it
                continue
        if c.isalpha():
            m = re.match(r"[A-Za-z_]+", candidate[i:])
            word = m.group(0) if m else c
            out.append({"True": "true", "False": "false", "None": "null"}.get(word, word))
            i += len(word)
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_json_object(text: str) -> Any:
    """Parse the JSON object a model reply contains. Raises JSONRepairError."""
    if text is None:
        raise JSONRepairError("empty reply")
    s = text.strip()
    if not s:
        raise JSONRepairError("empty reply")
    if s[0] == "{":
        try:
            return json.loads(s)
        except ValueError:
            pass
    candidates: list[str] = [m.group(1) for m in _FENCE.finditer(s)]
    candidates.append(s)
    for cand in candidates:
        for obj_text in iter_json_objects(cand):
            try:
                obj = json.loads(obj_text)
            except ValueError:
                try:
                    obj = json.loads(repair_json(obj_text))
                except ValueError:
                    continue
            if isinstance(obj, dict):
                return obj
    if "{" in s and find_json_object(s) is None:
        raise JSONRepairError("no complete JSON object in reply (truncated or unbalanced)")
    raise JSONRepairError("no parseable JSON object in reply")
