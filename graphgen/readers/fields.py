"""Fields of a raw row -> a `SeedQuestion`: which key holds the question, solution, answer,
choices and id (auto-detected per row unless a `FieldMap` names them), and the GSM8K / MATH
answer rules. See graphgen.readers.seeds for the rules in full.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from pydantic import BaseModel, Field

from graphgen.answers import last_boxed
from graphgen.normalize import normalize_question
from graphgen.records import SeedQuestion

QUESTION_FIELDS = ("question", "problem", "Question", "input", "prompt", "instruction", "content")


BODY_FIELDS = ("body", "Body")


SOLUTION_FIELDS = ("solution", "Solution", "rationale", "Rationale", "explanation", "reasoning", "steps")


ANSWER_FIELDS = ("answer", "final_answer", "target", "Answer", "correct", "correct_answer", "gold",
                 "gold_answer")


CHOICE_FIELDS = ("options", "choices", "Options", "Choices")


_CHOICE_LABEL = re.compile(r"^\s*\(?[A-Ea-e]\s*[).:]")


ID_FIELDS = ("id", "unique_id", "ID", "idx")
_KNOWN_FIELDS = frozenset(QUESTION_FIELDS + BODY_FIELDS + SOLUTION_FIELDS + ANSWER_FIELDS + CHOICE_FIELDS
                          + ID_FIELDS + ("source",))


MAX_QUESTION_CHARS = 20_000  # the longest MATH problem is ~4,000; megabytes are a wrong field


_GSM8K_ANSWER = re.compile(r"\n?####\s*(?P<answer>[^\n]*?)\s*$")


class FieldMap(BaseModel):
    """Names of the fields to read; ``None`` means auto-detect (rules in the module docstring).

    GSM8K needs nothing (``question`` / ``answer`` with ``#### N``); MATH needs nothing
    (``problem`` / ``solution`` / ``answer``); for other files name the fields, e.g.
    ``FieldMap(question="prompt_text", answer="gold")``.
    """

    question: str | None = Field(None, description="question field (--question-field)")
    solution: str | None = Field(None, description="worked-solution field (--solution-field)")
    answer: str | None = Field(None, description="final-answer field (--answer-field)")
    id: str | None = Field(None, description="id field (--id-field)")
    source: str | None = Field(None, description="per-row source/dataset-name field")


def stable_seed_id(question: str, source: str) -> str:
    """``<source>-<first 16 hex of sha256(normalised question)>``."""
    digest = hashlib.sha256(normalize_question(question).encode("utf-8")).hexdigest()[:16]
    return f"{source}-{digest}" if source else digest


def _as_text(value: Any) -> str | None:
    """Scalar -> str; None / '' / NaN -> None; integral floats lose their '.0'."""
    if type(value) is str:  # the common case first
        return value if value.strip() else None
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN (pandas-made CSV/Parquet)
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, (int, str)):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if text.strip() else None


def _first_present(row: dict, names: Iterable[str]) -> str | None:
    for name in names:
        if name in row:
            return name
    return None


class _RowProblem(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _present_fields(row: dict) -> str:
    keys = [str(k) for k in row]
    shown = ", ".join(keys[:12]) + (", …" if len(keys) > 12 else "")
    return shown or "(none)"


class _Keys(NamedTuple):
    """Which key of a row holds each part: the detection of graphgen.readers.seeds' docstring
    for one set of keys (so a reader can detect once per key set instead of once per row)."""

    question: str | None
    auto: bool  # the question key was detected (not named): a body field is prepended
    body: str | None
    choices: str | None
    solution: str | None
    answer: str | None
    id: str | None


def _detect(row: dict, fmap: FieldMap) -> _Keys:
    """The keys of `row` each part is read from (a named field is taken as named, present or not)."""
    auto = fmap.question is None
    return _Keys(
        question=_first_present(row, QUESTION_FIELDS) if auto else fmap.question,
        auto=auto,
        body=_first_present(row, BODY_FIELDS) if auto else None,
        choices=_first_present(row, CHOICE_FIELDS),
        solution=fmap.solution if fmap.solution is not None else _first_present(row, SOLUTION_FIELDS),
        answer=fmap.answer if fmap.answer is not None else _first_present(row, ANSWER_FIELDS),
        id=fmap.id if fmap.id is not None else _first_present(row, ID_FIELDS),
    )


def _extract_question(row: dict, fmap: FieldMap, keys: _Keys | None = None) -> str:
    name = keys.question if keys is not None else (
        fmap.question if fmap.question is not None else _first_present(row, QUESTION_FIELDS))
    if fmap.question is not None:
        if fmap.question not in row:
            raise _RowProblem(
                "missing_question",
                f"no question field {fmap.question!r} (row has: {_present_fields(row)}); "
                "fix --question-field",
            )
        auto = False
    else:
        if name is None:
            raise _RowProblem(
                "missing_question",
                f"no question field (looked for {', '.join(QUESTION_FIELDS)}; row has: "
                f"{_present_fields(row)}); pass --question-field NAME",
            )
        auto = True
    value = row[name]
    if value is None:
        raise _RowProblem("empty_question", f"question field {name!r} is null")
    if not isinstance(value, str):
        raise _RowProblem(
            "non_string_question",
            f"question field {name!r} is a {type(value).__name__}, not a string",
        )
    if not value.strip():
        raise _RowProblem("empty_question", f"question field {name!r} is empty")
    if len(value) > MAX_QUESTION_CHARS:
        raise _RowProblem("question_too_long", f"question field {name!r} holds {len(value):,} characters "
                          f"(the cap is {MAX_QUESTION_CHARS:,}: is it the right field?)")
    if auto:
        body_name = keys.body if keys is not None else _first_present(row, BODY_FIELDS)
        body = row.get(body_name) if body_name else None
        if isinstance(body, str) and body.strip():
            value = _join_body(body, value)
    return value


def _join_body(body: str, question: str) -> str:
    body = body.strip()
    if body and body[-1] not in ".!?;:,":
        body += "."
    return f"{body} {question.strip()}"


def _optional(row: dict, explicit: str | None, candidates: tuple[str, ...], what: str,
              name: str | None = None) -> str | None:
    """The text of an optional part: `explicit` must be present; else the first of
    `candidates` (``name``: that key, already detected)."""
    if explicit is not None:
        if explicit not in row:
            raise _RowProblem(
                "missing_field",
                f"no {what} field {explicit!r} (row has: {_present_fields(row)}); "
                f"fix --{what}-field",
            )
        return _as_text(row[explicit])
    if name is None:
        name = _first_present(row, candidates)
    return _as_text(row[name]) if name is not None else None


def _with_choices(question: str, choices: Any) -> str:
    """A multiple-choice question keeps its choices: they are part of what is asked, so they
    go into the question text every prompt, store and export carries. A list gets one line
    per choice (labelled A), B), ... unless already labelled); a string is kept as written."""
    if isinstance(choices, str):
        return f"{question.rstrip()}\nChoices: {choices.strip()}" if choices.strip() else question
    if isinstance(choices, dict) and choices:  # SAT style: {"A": "3", "B": "4", ...}
        return question.rstrip() + "\nChoices:\n" + "\n".join(
            f"{str(k).strip().strip('()').upper()}) {_as_text(v) or ''}" for k, v in choices.items())
    if not isinstance(choices, (list, tuple)) or not choices:
        return question
    lines = []
    for i, choice in enumerate(choices):
        text = _as_text(choice) or ""
        lines.append(text if _CHOICE_LABEL.match(text) else f"{chr(ord('A') + i)}) {text}")
    return question.rstrip() + "\nChoices:\n" + "\n".join(lines)


def _fields_used(row: dict, fmap: FieldMap, seed: SeedQuestion, prefix_ids: bool) -> dict[str, str]:
    """Which field each part of the seed came from (for the user to check the guess)."""
    def name(explicit: str | None, candidates: tuple[str, ...]) -> str:
        found = explicit or _first_present(row, candidates)
        return repr(found) if found else "(none)"

    question = name(fmap.question, QUESTION_FIELDS)
    body = _first_present(row, BODY_FIELDS)
    if fmap.question is None and body and isinstance(row.get(body), str) and row[body].strip():
        question = f"{body!r} + {question}"
    used = {"question": question, "solution": name(fmap.solution, SOLUTION_FIELDS),
            "answer": name(fmap.answer, ANSWER_FIELDS)}
    # the GSM8K and MATH rules (module docstring) fill one part from the other
    if used["solution"] == "(none)" and seed.solution and used["answer"] != "(none)":
        used["solution"] = f"{used['answer']} (a worked text ending in '#### N')"
    elif used["answer"] == "(none)" and seed.answer and used["solution"] != "(none)":
        used["answer"] = f"{used['solution']} (its last \\boxed{{}})"
    if _first_present(row, CHOICE_FIELDS):
        used["choices"] = repr(_first_present(row, CHOICE_FIELDS))
    id_name = fmap.id or _first_present(row, ID_FIELDS)
    used["id"] = (repr(id_name) + (" (prefixed with the source)" if prefix_ids else "")) if id_name \
        else "(content hash)"
    return used


def _to_seed(row: Any, fmap: FieldMap, source: str, prefix_ids: bool = False) -> SeedQuestion:
    seed_id, question, solution, answer, row_source = _parts(row, fmap, source, prefix_ids, None, True)
    return SeedQuestion(
        id=seed_id, question=question, solution=solution, answer=answer, source=row_source,
        metadata=_metadata(row, fmap),
    )


def _parts(row: Any, fmap: FieldMap, source: str, prefix_ids: bool, keys: _Keys | None,
           full: bool) -> tuple[str, str, str | None, str | None, str]:
    """(id, question, solution, answer, source) of a row, with the problems `_to_seed` raises.
    ``keys``: the row's keys as `_detect` found them for its key set (None: detect now).
    Without ``full`` the solution and answer are None (a named field must still be present),
    for a reader that needs only the id and the question (filter's)."""
    if not isinstance(row, dict):
        raise _RowProblem("not_object", f"row is a JSON {type(row).__name__}, not an object")
    if keys is None:
        keys = _detect(row, fmap)
    question = _extract_question(row, fmap, keys)
    solution = answer = None
    if full or fmap.solution is not None:  # a named field must be there even when unused
        solution = _optional(row, fmap.solution, SOLUTION_FIELDS, "solution", keys.solution)
    if full or fmap.answer is not None:
        answer = _optional(row, fmap.answer, ANSWER_FIELDS, "answer", keys.answer)
    if keys.choices is not None:
        question = _with_choices(question, row[keys.choices])
    if full:
        if answer is not None:
            m = _GSM8K_ANSWER.search(answer)
            if m and m.group("answer"):
                if solution is None and answer[: m.start()].strip():
                    solution = answer
                answer = m.group("answer")
        elif solution is not None:
            answer = last_boxed(solution)
    # A row's own `source` field (e.g. graphgen's seed files, mixed-dataset files) wins
    # over the file stem; --source / fmap.source name another field.
    row_source = row.get(fmap.source or "source")
    row_source = source if row_source is None else (_as_text(row_source) or source)
    seed_id = _optional(row, fmap.id, ID_FIELDS, "id", keys.id)
    if seed_id is None:
        seed_id = stable_seed_id(question, row_source)
    elif prefix_ids:
        seed_id = f"{row_source}-{seed_id.strip()}"
    return seed_id.strip(), question, solution, answer, row_source


def _metadata(row: dict, fmap: FieldMap) -> dict:
    """The row's other short scalar fields (MATH `level`/`type`, Minerva `type`, ...), kept as
    metadata: the report and later stages can group by them."""
    named = {fmap.question, fmap.solution, fmap.answer, fmap.id, fmap.source}
    out = {}
    for key, value in row.items():
        if key in _KNOWN_FIELDS or key in named or value is None or isinstance(value, (dict, list)):
            continue
        if isinstance(value, float) and value != value:  # NaN from pandas
            continue
        if isinstance(value, (str, int, float, bool)) and len(str(value)) <= 200:
            out[str(key)] = value
    return out
