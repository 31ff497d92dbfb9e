"""Gates for what small models do (issue 23): prompt examples echoed as concepts, questions
copied from their exemplar seeds. Replies come through a recording transport (the client's
extension point), so each test sees exactly what was asked again."""

from __future__ import annotations

import asyncio
import json

from graphgen.config import LLMSettings
from graphgen.stages.extract import ConceptExtractor, supported
from graphgen.stages.generate import copy_check, copy_overlap
from graphgen.llm import LLMClient
from graphgen.records import ExtractionOutput, GeneratedQA, SeedQuestion

BETTY = ("Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. "
         "Her parents decided to give her $15 for that purpose, and her grandparents twice as much as her parents. "
         "How much more money does Betty need to buy the wallet?")


class Scripted:
    base_url = "http://scripted.invalid/v1"

    def __init__(self, replies: list[dict]):
        self.replies = [json.dumps(r) for r in replies]
        self.bodies: list[dict] = []

    async def post(self, path, body):
        self.bodies.append(body)
        return {"choices": [{"message": {"content": self.replies.pop(0)}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 20}}

    async def get(self, path):
        return {}

    async def aclose(self):
        pass


def ask(transport, messages, output, check):
    client = LLMClient(LLMSettings(base_url=transport.base_url, cache_path=None), transport=transport)
    return asyncio.run(client.complete(messages, output, check=check)), client


def test_a_copied_question_is_asked_again_and_the_new_one_kept():
    check = copy_check([("gsm8k-7", BETTY)], 0.5)
    new = "A bakery sells 12 muffins an hour for 5 hours. How many muffins does it sell?"
    t = Scripted([{"question": BETTY, "solution": "100 - 15 = 85", "answer": "85"},
                  {"question": new, "solution": "12 * 5 = 60", "answer": "60"}])
    r, client = ask(t, [{"role": "user", "content": "Write a question."}], GeneratedQA, check)
    assert r.value.question == new and client.rejected == 1 and len(t.bodies) == 2
    assert "copies its exemplar seed gsm8k-7" in t.bodies[1]["messages"][-1]["content"]


def test_a_question_that_keeps_copying_fails_with_the_reason():
    check = copy_check([("gsm8k-7", BETTY)], 0.5)
    reworded = BETTY.replace("Betty", "Anna")
    assert copy_overlap(reworded, BETTY) > 0.5
    t = Scripted([{"question": reworded, "solution": "s", "answer": "5"}] * 3)
    r, _ = ask(t, [{"role": "user", "content": "Write a question."}], GeneratedQA, check)
    assert r.value is None and "rejected: the question copies its exemplar seed gsm8k-7" in r.error
    assert copy_overlap("How many apples are left after eating two of five?", BETTY) == 0.0


def test_prompt_examples_are_dropped_unless_the_seed_supports_them():
    ex = ConceptExtractor("extract_v1")
    seed = SeedQuestion(id="s1", question="What is 20 percent of 150 apples?", source="t")
    out = ExtractionOutput(topics=["Percentages", "Probability"],
                           knowledge_points=["Pythagorean theorem", "Computing a percentage of a quantity",
                                             "Percent of a whole", "20 percent of 150"])
    # v1's examples, as a 0.5B model echoed them
    from graphgen.llm.client import LLMResult
    from graphgen.records import LLMUsage

    e = ex.to_extraction("s1", LLMResult(out, "", None, LLMUsage(model="m")), seed)
    assert e.topics == ["Percentages"]  # supported: the seed says "percent"
    assert e.knowledge_points == ["Computing a percentage of a quantity", "Percent of a whole"]
    assert [d.split(":")[0] for d in e.dropped] == ["topic 'Probability'", "knowledge point 'Pythagorean theorem'",
                                                    "knowledge point '20 percent of 150'"]
    assert "names the problem's numbers" in e.dropped[-1]
    assert supported("Pythagorean theorem", "By the Pythagorean theorem, the hypotenuse is 5")
    assert not supported("Pythagorean theorem", "A right triangle has legs 3 and 4")


def test_a_reply_made_only_of_prompt_examples_is_asked_again():
    ex = ConceptExtractor("extract_v1")
    seed = SeedQuestion(id="s2", question="Tom has 3 bags of 4 marbles. How many marbles?", source="t")
    t = Scripted([{"topics": ["Linear equations"], "knowledge_points": ["Solving a linear equation in one variable"]},
                  {"topics": ["Multiplication"], "knowledge_points": ["Multiplying equal groups"]}])
    job = ex.job(seed)
    r, _ = ask(t, job.messages, ExtractionOutput, job.check)
    assert r.value.topics == ["Multiplication"] and len(t.bodies) == 2
    assert "prompt's own examples" in t.bodies[1]["messages"][-1]["content"]


def test_numbered_and_bulleted_names_lose_their_markers_and_are_not_asked_again():
    # a small model's "1. The Basics": the list number is no concept, and its digit must not
    # make the name look like one naming the problem's numbers (every such reply was re-asked
    # three times and failed)
    ex = ConceptExtractor("extract_v1")
    seed = SeedQuestion(id="s1", question="What is 20 percent of 150 apples?", source="t")
    t = Scripted([{"topics": ["1. Percentages", "2) Ratios"],
                   "knowledge_points": ["- Percent of a whole", "a) Computing a percentage", "3D shapes"]}])
    r, client = ask(t, ex.messages(seed), ExtractionOutput, lambda out: ex.all_leaked(out, seed))
    assert len(t.bodies) == 1 and client.rejected == 0
    assert r.value.topics == ["Percentages", "Ratios"]
    assert r.value.knowledge_points == ["Percent of a whole", "Computing a percentage", "3D shapes"]


def test_a_question_restating_its_seed_in_another_order_is_a_copy():
    # a 0.5B model's "new" question on unseen seeds: the seed's sentences reordered, its numbers kept
    seed = "Brian has zero fewer oranges than Marcie. Marcie has 12 oranges. How many oranges does Brian have?"
    copied = "How many oranges does Brian have if he has zero fewer oranges than Marcie, and Marcie has 12 oranges?"
    assert copy_overlap(copied, seed) < 0.5  # the 5-gram share alone lets it through
    check = copy_check([("asdiv-19", seed)], 0.5)
    why = check(GeneratedQA(question=copied, solution="12 - 0 = 12", answer="12"))
    assert why and "restates its exemplar seed asdiv-19" in why
    # the same situation with other numbers, or other words around the same numbers, is new
    assert check(GeneratedQA(question=copied.replace("12", "15"), solution="s", answer="15")) is None
    assert check(GeneratedQA(question="A shop sold 12 kites on Monday and none on Tuesday. How many kites did it "
                                      "sell in the two days?", solution="s", answer="12")) is None
    assert copy_check([("s", seed)], 1.0) is None  # max_copy_overlap = 1 turns every copy check off
