"""Row status: the one definition of "verified" and of "clean" in graphgen.

Every row (a seed, a generated row, a solve path) carries two decisions, each written by the
stage that makes it and stored in the workspace (SQLite and Neo4j alike; `graph push` copies
both):

- **verification** (`SolveVerdict.status`, written by `solve`; `rule_verdict` below decides it):
  - *verified by gold*: the question has a comparable gold answer and at least one sampled
    path reaches it (paths that reach it are the correct ones);
  - *verified by vote*: no gold; the row's own answer is the largest group of all votes (every
    sampled path, paths that crashed or gave no answer included, plus the row's own answer)
    and that group holds at least `min_agreement` of them;
  - *unverified*: checked and not confirmed (no path reaches the gold; the majority disagrees
    with the row's answer; too little agreement);
  - *unverifiable*, with a reason: nothing to check against (no gold and no answer of its own),
    or a gold that cannot be compared (an option letter without the options).
  A model judge's verdict (`SolveVerdict.judge`, issue 20) is stored beside the rule's, never
  over it; `is_verified(verdict, policy)` picks: ``rule``, ``judge``, ``both`` or ``any``.
- **filter decision** (`FilterDecision`, written by `filter`): kept, or why not (exact / near /
  semantic duplicate, contaminated with benchmark and item, paraphrase, failed).
- **question check** (`QuestionCheck`, written by `check`): passed, failed with reasons (empty
  or truncated by rule; ill-posed, several answers, a proof or invalid problem by the judge), or
  unknown (the judge gave no reply: never counted as passed), with the answer and problem type.

- **variant agreement** (`VariantLineage.rule_agreed` and `VariantLineage.judge`, written by
  `generate variants`): a number-shifted variant is made when enough of its original's
  programs agree on the new answer; the rule's verdict (numbers equal, or math-verify) and the
  answer judge's (`[judge] answers`) are kept side by side; `variant_agreed(lineage, policy)`
  picks like `is_verified`.

`is_verified` is the only test of "verified": export, report, filter, variants and graph push
call it (or read what it wrote); none re-derives it. `failed_check` is the only test of "this
row failed the question check": solve and variants skip such rows (`[check] skip_failed`). `Gates` says whether a row passed every
gate that ran and, if not, the reason export leaves it out. The check gate runs first: an
ill-posed question is left out as "ill-posed", not as "unverified".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from graphgen.records import FilterDecision, QuestionCheck, SolvePath, SolveVerdict, VariantLineage

__all__ = ["Policy", "LEFT_OUT", "verification", "is_verified", "rule_verdict", "kept_paths", "path_is_clean",
           "marked_verified", "Gates", "left_out_line",
           "check_reason", "failed_check", "variant_agreed"]

Policy = Literal["rule", "judge", "both", "any"]
Status = Literal["verified", "unverified", "unverifiable"]

# reason code -> how the export summary names it (plural)
LEFT_OUT: dict[str, str] = {
    "failed": "failed generations",
    "not_solved": "never solved",
    "unverified": "unverified",
    "unverifiable": "unverifiable",
    "path_not_kept": "paths not kept by solve",
    "not_filtered": "not seen by filter",
    "duplicate": "exact duplicates",
    "near_duplicate": "near-duplicates",
    "semantic_duplicate": "semantic duplicates",
    "contaminated": "contaminated",
    "paraphrase": "benchmark paraphrases",
    # graphgen check (check_reason below)
    "not_checked": "not checked",
    "check_no_reply": "checks without a judge's reply",
    "empty_question": "empty questions",
    "truncated": "truncated questions",
    "ill_posed": "ill-posed questions",
    "multiple_answers": "questions with more than one answer",
    "proof": "proofs",
    "invalid": "invalid problems",
    "multiple_choice": "multiple-choice problems",
    "yes_no": "yes/no problems",
    "answer_type": "of an answer type not selected",
    # generate variants (variant_agreed below)
    "variant_not_agreed": "variants whose programs agree only under another --verified-by",
    "problem_type": "of a problem type not selected",
}


def verification(v: SolveVerdict | None) -> Status | None:
    """The rule's verification status of a verdict (None: never solved). Records written before
    `status` existed carry only the old flags; their status is read from those, once, here."""
    if v is None:
        return None
    if v.status is not None:
        return v.status
    ok = v.verified if v.verified is not None else v.majority_correct
    return "verified" if ok else "unverified"


def is_verified(v: SolveVerdict | None, policy: Policy = "rule") -> bool:
    """THE definition of a verified question: the rule's verdict, the judge's, both, or either."""
    if v is None:
        return False
    return _by_policy(verification(v) == "verified", v.judge is not None and v.judge.status == "verified", policy)


def variant_agreed(lineage: VariantLineage, policy: Policy = "rule") -> bool:
    """Do a variant's programs agree on its answer under a policy? The rule's verdict
    (`rule_agreed`: programs of rule-kept paths, numbers equal or math-verify), the answer
    judge's (`judge`, when `generate variants` ran with `--judge`), both or either."""
    return _by_policy(lineage.rule_agreed, lineage.judge is not None and lineage.judge.status == "verified", policy)


def _by_policy(rule: bool, judge: bool, policy: Policy) -> bool:
    if policy == "rule":
        return rule
    if policy == "judge":
        return judge
    if policy == "both":
        return rule and judge
    if policy == "any":
        return rule or judge
    raise ValueError(f"unknown verification policy {policy!r}; choose rule, judge, both or any")


def rule_verdict(*, gold: str | None, gold_problem: str | None, correct: int, own_answer: str | None,
                 own_in_majority: bool, majority: str | None, majority_votes: int, total_votes: int,
                 min_agreement: float) -> tuple[Status, Literal["gold", "vote"] | None, str]:
    """The rule: (status, verified_by, reason) of one question's sampled paths (see the module
    docstring). `gold_problem` says why a gold answer cannot be compared (None: it can);
    `total_votes` counts every sampled path plus the row's own answer."""
    if gold is not None:
        if gold_problem:
            return "unverifiable", None, gold_problem
        if correct:
            return "verified", "gold", f"{correct} path(s) reach the gold {gold}"
        said = f" (majority {majority})" if majority is not None else " (no path gave an answer)"
        return "unverified", None, f"no path reaches the gold {gold}{said}"
    if not own_answer:
        return "unverifiable", None, "no gold answer and no answer of its own to check the vote against"
    share = majority_votes / total_votes if total_votes else 0.0
    if not own_in_majority:
        return "unverified", None, (f"the majority {majority} ({majority_votes} of {total_votes} votes) "
                                    f"disagrees with the row's answer {own_answer}")
    if share < min_agreement:
        return "unverified", None, (f"the row's answer {own_answer} has {majority_votes} of {total_votes} votes, "
                                    f"below min_agreement {min_agreement}")
    return "verified", "vote", f"the row's answer {own_answer} has {majority_votes} of {total_votes} votes"


def kept_paths(v: SolveVerdict, policy: Policy = "rule") -> set[str]:
    """The ids of a question's kept paths under a policy: the rule's set, the judge's, both
    (in each) or any (in either)."""
    rule = set(v.kept)
    judge = set(v.judge.kept) if v.judge is not None else set()
    if policy == "rule":
        return rule
    if policy == "judge":
        return judge
    return rule & judge if policy == "both" else rule | judge


def path_is_clean(path: SolvePath, verdict: SolveVerdict | None, policy: Policy = "rule") -> bool:
    """A path for training: its question is verified and solve kept the path (it agrees with
    the gold, or with the row's own answer)."""
    return is_verified(verdict, policy) and verdict is not None and path.id in kept_paths(verdict, policy)


def marked_verified(row: dict, *fields: str) -> bool:
    """A row read from a file that says itself it is verified (e.g. solve's paths carry
    `correct`, other tools `verified: "yes"`): used only where no stored verdict exists."""
    for field in fields:
        if field not in row:
            continue
        value = row[field]
        if isinstance(value, str):
            return value.strip().lower() in ("true", "yes", "1", "verified", "correct", "ok")
        return bool(value)
    return False


def failed_check(c: QuestionCheck | None) -> str | None:
    """THE test of "this row failed the question check": its reason code (a LEFT_OUT key), or
    None when it passed, was never checked, or got no reply from the judge (asked again next
    time: not a failure). Solve and variants skip rows with a reason (`[check] skip_failed`)."""
    if c is None or c.status != "failed":
        return None
    return check_reason(c)


def check_reason(c: QuestionCheck | None, answer_types: Iterable[str] = (), problem_types: Iterable[str] = ()) -> str | None:
    """Why a question check leaves a row out (None: it passed), as a LEFT_OUT code; a selection
    of answer / problem types (empty: any) leaves out the rows of other types."""
    if c is None:
        return "not_checked"
    if c.status == "unknown":
        return "check_no_reply"
    if c.status == "failed":
        return c.reasons[0] if c.reasons else "ill_posed"
    answer_types, problem_types = set(answer_types), set(problem_types)
    if answer_types and c.answer_type not in answer_types:
        return "answer_type"
    if problem_types and c.problem_type not in problem_types:
        return "problem_type"
    return None


class Gates:
    """Which gates ran for an export, and the reason a row is left out (None: it passed).

    `verdicts` are solve's, `decisions` filter's, `checks` check's, each by row id. A gate that
    did not run (`verification` / `filtering` False, no check of the row's kind) lets every row
    through; one that ran leaves out every row it did not pass, including rows it never saw
    ("never solved", "not seen by filter", "not checked")."""

    def __init__(self, verdicts: dict[str, SolveVerdict], decisions: dict[str, FilterDecision], *,
                 verification: bool, filtering: bool, policy: Policy = "rule",
                 checks: dict[str, QuestionCheck] | None = None, answer_types: Iterable[str] = (),
                 problem_types: Iterable[str] = ()):
        self.verdicts, self.decisions = verdicts, decisions
        self.verification, self.filtering, self.policy = verification, filtering, policy
        self.checks = checks or {}
        self.answer_types, self.problem_types = tuple(answer_types), tuple(problem_types)
        # the check gate applies per kind of row: a workspace may check generated rows and not
        # variants; a selection by type applies to every row (an unchecked row has no type)
        self.checked_kinds = {c.row_kind for c in self.checks.values()}
        self.selecting = bool(self.answer_types or self.problem_types)

    def _check_reason(self, row_id: str, kind: str | None) -> str | None:
        if not self.selecting and (kind is None or kind not in self.checked_kinds):
            return None
        return check_reason(self.checks.get(row_id), self.answer_types, self.problem_types)

    @staticmethod
    def ran(decisions: Iterable[FilterDecision], kinds: set[str] | None) -> bool:
        """Did filter see rows of these kinds (None: any)?"""
        return any(kinds is None or d.row_kind in kinds for d in decisions)

    def _filter_reason(self, row_id: str) -> str | None:
        if not self.filtering:
            return None
        d = self.decisions.get(row_id)
        if d is None:
            return "not_filtered"
        return None if d.decision == "kept" else d.decision

    def row_reason(self, row_id: str, status: str = "ok", kind: str | None = None,
                   variant: VariantLineage | None = None) -> str | None:
        if status == "failed":
            return "failed"
        if (reason := self._check_reason(row_id, kind)) is not None:
            return reason
        if variant is not None and not variant_agreed(variant, self.policy):
            return "variant_not_agreed"
        if self.verification:
            v = self.verdicts.get(row_id)
            if v is None:
                return "not_solved"
            if not is_verified(v, self.policy):
                return verification(v) if verification(v) != "verified" else "unverified"
        return self._filter_reason(row_id)

    def path_reason(self, path_id: str, question_id: str) -> str | None:
        """A solve path: its question passed the check (when it was checked), verified, the
        path kept by solve (it agrees with the gold or the row's own answer), its question not
        removed by filter, and the path itself passed by filter if filter saw paths."""
        v = self.verdicts.get(question_id)
        kind = v.question_kind if v is not None else None
        if (reason := self._check_reason(question_id, kind)) is not None:
            return reason
        if v is None:
            return "not_solved"
        if not is_verified(v, self.policy):
            return verification(v) if verification(v) != "verified" else "unverified"
        if path_id not in kept_paths(v, self.policy):
            return "path_not_kept"
        q = self.decisions.get(question_id)  # a removed question takes its paths with it
        if q is not None and q.decision != "kept":
            return q.decision
        return self._filter_reason(path_id)

    def status_fields(self, verdict_id: str, decision_id: str) -> dict:
        """What export writes into a row's metadata: its question's verification and check,
        and its filter decision."""
        v = self.verdicts.get(verdict_id)
        d = self.decisions.get(decision_id)
        c = self.checks.get(verdict_id)
        return {"verification": verification(v), "verified_by": v.verified_by if v else None,
                "judge": v.judge.status if v is not None and v.judge is not None else None,
                "filter": d.decision if d else None, "check": c.status if c else None,
                "check_reasons": list(c.reasons) if c else [],
                "answer_type": c.answer_type if c else None, "problem_type": c.problem_type if c else None}


def left_out_line(counts: dict[str, int]) -> str:
    """'1,211 unverified, 84 near-duplicates, 31 contaminated left out' (largest first)."""
    parts = [f"{n:,} {LEFT_OUT.get(k, k)}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n]
    return ", ".join(parts) + " left out" if parts else "nothing left out"
