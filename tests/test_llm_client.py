"""LLMClient against the fake OpenAI server over real HTTP (no patching of the SDK)."""

from __future__ import annotations

import json
import asyncio
import time

import pytest
from fake_llm_fixtures import FAKE_API_KEY

from graphgen.config import Price
from graphgen.llm import LLMClient, LLMFatalError
from graphgen.records import ExtractionOutput, GeneratedQA

PROBLEM = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."


def msgs(text: str = PROBLEM) -> list[dict]:
    return [
        {"role": "system", "content": "You label math problems with topics and knowledge points. Reply with JSON."},
        {"role": "user", "content": f"Problem:\n{text}\nLabel this problem with its topics and knowledge points."},
    ]


def run(coro):
    return asyncio.run(coro)


async def one(client: LLMClient, messages=None, output=ExtractionOutput):
    try:
        return await client.complete(messages or msgs(), output)
    finally:
        await client.aclose()


def test_structured_output_happy_path(fake_llm, llm_settings):
    client = LLMClient(llm_settings)
    r = run(one(client))
    assert r.error is None and isinstance(r.value, ExtractionOutput)
    assert 1 <= len(r.value.topics) <= 2 and 1 <= len(r.value.knowledge_points) <= 5
    assert r.attempts == 1 and r.retries == 0 and not r.usage.cached
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    st = fake_llm.stats()
    assert st["total"] == 1 and st["response_formats"] == {"json_schema": 1}
    # deterministic: same text, same concepts (fresh client, no cache)
    llm_settings.cache_path = None
    r2 = run(one(LLMClient(llm_settings)))
    assert r2.value == r.value


def test_generated_qa(fake_llm, llm_settings):
    r = run(one(LLMClient(llm_settings), [{"role": "user", "content": "Write a question on fractions."}],
                GeneratedQA))
    assert isinstance(r.value, GeneratedQA) and r.value.answer


def test_fenced_json_is_parsed_without_reask(fake_llm, llm_settings):
    fake_llm.script([{"fence": True}])
    r = run(one(LLMClient(llm_settings)))
    assert r.value is not None and r.attempts == 1
    assert "```" in r.raw


def test_malformed_then_reask_succeeds(fake_llm, llm_settings):
    fake_llm.script([{"malformed": True}])
    client = LLMClient(llm_settings)
    r = run(one(client))
    assert r.value is not None and r.error is None
    assert r.attempts == 2 and client.reasks == 1
    assert fake_llm.stats()["total"] == 2
    # usage of both attempts is paid and counted
    assert r.usage.prompt_tokens > 0


def test_truncated_reply_gets_a_fresh_attempt_in_the_same_budget(fake_llm, llm_settings):
    llm_settings.max_tokens = 100
    fake_llm.script([{"truncate": True}])
    r = run(one(LLMClient(llm_settings)))
    assert r.value is not None and r.attempts == 2
    # the truncated attempt reports completion_tokens == max_tokens (100) in the fake
    assert r.usage.completion_tokens >= 100


class Scripted:
    """A transport (the client's extension point) that records each request body and
    answers from a script of (content, finish_reason)."""

    base_url = "http://scripted.invalid/v1"

    def __init__(self, replies):
        self.replies = list(replies)
        self.bodies: list[dict] = []

    async def post(self, path, body):
        self.bodies.append(body)
        content, finish = self.replies.pop(0)
        return {"choices": [{"message": {"content": content}, "finish_reason": finish}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 100 if finish == "length" else 5}}

    async def get(self, path):
        return {}

    async def aclose(self):
        pass


def test_a_cut_off_reply_is_never_resent_and_the_budget_never_doubles(llm_settings):
    from graphgen.records import CotSolution

    llm_settings.max_tokens = 100
    t = Scripted([("Let x be the number of apples. Then", "length"), ("x = 3, so \\boxed{3}", "stop")])
    r = run(LLMClient(llm_settings, transport=t).complete([{"role": "user", "content": "Solve 1+2."}], CotSolution))
    assert r.value.solution == "x = 3, so \\boxed{3}" and r.attempts == 2
    first, second = t.bodies
    assert second["max_tokens"] == first["max_tokens"] == 100
    assert [m["role"] for m in second["messages"]] == ["user"]  # a fresh attempt: no cut text
    assert "Let x be" not in json.dumps(second) and "short" in second["messages"][-1]["content"]
    # free text: no JSON asked for, no response_format, whatever the structured-output mode
    assert "response_format" not in first and "JSON" not in json.dumps(first)


def test_a_looping_reply_is_not_asked_again(llm_settings):
    from graphgen.records import CotSolution

    loop = "First we add 2 and 3 to get 5. " * 40
    t = Scripted([(loop, "length"), ("never sent", "stop")])
    r = run(LLMClient(llm_settings, transport=t).complete([{"role": "user", "content": "Solve."}], CotSolution))
    assert r.value is None and "loops" in r.error and len(t.bodies) == 1


def test_never_validating_reply_is_a_failure_with_raw_text(fake_llm, llm_settings):
    fake_llm.script([{"invalid_schema": True, "times": 3}])
    client = LLMClient(llm_settings)
    r = run(one(client))
    assert r.value is None
    assert "schema validation failed" in r.error and "after 3 attempts" in r.error
    assert '"knowledge_points":"none"' in r.raw
    assert r.attempts == 3
    assert client.tally.failed == 1 and client.tally.ok == 0
    # a failure is not cached: the next call asks the server again and succeeds
    r2 = run(one(client))
    assert r2.value is not None and not r2.usage.cached
    assert fake_llm.stats()["total"] == 4


def test_429_retry_after_is_honoured(fake_llm, llm_settings):
    fake_llm.script([{"status": 429, "retry_after": 1}])
    t0 = time.monotonic()
    r = run(one(LLMClient(llm_settings)))
    waited = time.monotonic() - t0
    assert r.value is not None and r.retries == 1
    assert waited >= 1.0
    st = fake_llm.stats()
    assert st["by_status"] == {"429": 1, "200": 1}


def test_retry_after_ms_is_honoured(fake_llm, llm_settings):
    fake_llm.script([{"status": 429, "retry_after_ms": 300}])
    t0 = time.monotonic()
    r = run(one(LLMClient(llm_settings)))
    assert r.value is not None and r.retries == 1
    assert time.monotonic() - t0 >= 0.3


def test_500_is_retried(fake_llm, llm_settings):
    fake_llm.script([{"status": 500}, {"status": 503}])
    r = run(one(LLMClient(llm_settings)))
    assert r.value is not None and r.retries == 2


def test_dropped_connection_is_retried(fake_llm, llm_settings):
    fake_llm.script([{"drop": True}])
    r = run(one(LLMClient(llm_settings)))
    assert r.value is not None and r.retries == 1
    assert fake_llm.stats()["by_status"]["drop"] == 1


def test_timeout_is_retried(fake_llm, llm_settings):
    llm_settings.timeout = 0.3
    fake_llm.script([{"latency_ms": 1500}])
    t0 = time.monotonic()
    r = run(one(LLMClient(llm_settings)))
    assert r.value is not None and r.retries == 1
    assert time.monotonic() - t0 < 1.5  # did not wait for the slow reply


def test_retries_exhausted_is_a_failure(fake_llm, llm_settings):
    llm_settings.max_retries = 2
    fake_llm.script([{"status": 500, "times": 3}])
    client = LLMClient(llm_settings)
    r = run(one(client))
    assert r.value is None and "http 500" in r.error and "gave up after 2 retries" in r.error
    assert client.tally.failed == 1


def test_auth_error_is_fatal_and_key_not_leaked(fake_llm, llm_settings):
    fake_llm.script([{"status": 401, "message": f"Incorrect API key provided: {FAKE_API_KEY}"}])
    with pytest.raises(LLMFatalError) as ei:
        run(one(LLMClient(llm_settings)))
    assert FAKE_API_KEY not in str(ei.value) and "401" in str(ei.value)


def test_json_schema_rejected_falls_back_and_remembers(fake_llm, llm_settings):
    fake_llm.reject_json_schema(True)
    llm_settings.cache_path = None
    client = LLMClient(llm_settings)

    async def two():
        try:
            a = await client.complete(msgs("first problem about apples"), ExtractionOutput)
            b = await client.complete(msgs("second problem about pears"), ExtractionOutput)
            return a, b
        finally:
            await client.aclose()

    a, b = run(two())
    assert a.value is not None and b.value is not None
    assert client.mode == "json_object"
    st = fake_llm.stats()
    # one rejected json_schema request, then json_object only
    assert st["response_formats"] == {"json_schema": 1, "json_object": 2}
    assert st["by_status"] == {"400": 1, "200": 2}


def test_text_mode_sends_no_response_format(fake_llm, llm_settings):
    llm_settings.structured_output = "text"
    r = run(one(LLMClient(llm_settings)))
    assert r.value is not None
    assert fake_llm.stats()["response_formats"] == {"none": 1}


def test_cache_hit_on_repeat(fake_llm, llm_settings):
    client = LLMClient(llm_settings)
    r1 = run(one(client))
    r2 = run(one(client))
    assert r2.usage.cached and r2.value == r1.value and r2.usage.cost_usd == 0
    assert r2.attempts == 0
    assert client.tally.cached == 1
    assert client.tally.saved_tokens == r1.usage.prompt_tokens + r1.usage.completion_tokens
    # a new client (a resumed run) on the same cache file pays for nothing
    r3 = run(one(LLMClient(llm_settings)))
    assert r3.usage.cached
    st = fake_llm.stats()
    assert st["total"] == 1 and max(st["ok_by_hash"].values()) == 1


def test_cache_key_changes_with_model_temperature_schema(fake_llm, llm_settings):
    base = LLMClient(llm_settings)
    k0 = base.cache_key_for(msgs(), ExtractionOutput)
    assert k0 == LLMClient(llm_settings).cache_key_for(msgs(), ExtractionOutput)
    assert k0 != LLMClient(llm_settings.model_copy(update={"model": "other"})).cache_key_for(
        msgs(), ExtractionOutput)
    assert k0 != LLMClient(llm_settings.model_copy(update={"temperature": 0.7})).cache_key_for(
        msgs(), ExtractionOutput)
    assert k0 != LLMClient(llm_settings.model_copy(update={"max_tokens": 99})).cache_key_for(
        msgs(), ExtractionOutput)
    assert k0 != LLMClient(llm_settings.model_copy(update={"seed": 1})).cache_key_for(
        msgs(), ExtractionOutput)
    assert k0 != base.cache_key_for(msgs(), GeneratedQA)
    assert k0 != base.cache_key_for(msgs("another problem"), ExtractionOutput)
    # the API key does not change the key; the server does (issue 18: another server with the
    # same model name got 1,600 replies of the first one replayed from the cache)
    assert k0 == LLMClient(llm_settings.model_copy(update={"api_key": "sk-other"})).cache_key_for(msgs(), ExtractionOutput)
    other = llm_settings.model_copy(update={"base_url": "http://example.invalid/v1"})
    assert k0 != LLMClient(other).cache_key_for(msgs(), ExtractionOutput)


def test_api_key_never_in_cache_file_or_repr(fake_llm, llm_settings):
    client = LLMClient(llm_settings)
    run(one(client))
    run(one(client, msgs("a different problem with 3 pears")))
    client.close()
    data = b""
    for p in llm_settings.cache_path.parent.glob(llm_settings.cache_path.name + "*"):
        data += p.read_bytes()
    assert len(data) > 0
    assert FAKE_API_KEY.encode() not in data
    assert FAKE_API_KEY not in repr(client) and FAKE_API_KEY not in repr(llm_settings)


def test_failed_replies_not_cached(fake_llm, llm_settings):
    fake_llm.script([{"malformed": True, "times": 3}])
    client = LLMClient(llm_settings)
    r = run(one(client))
    assert r.value is None and "invalid JSON" in r.error
    assert len(client.cache) == 0


def test_cost_accounting_with_custom_price(fake_llm, llm_settings):
    llm_settings.prices = {"fake-model": Price(input=1.0, output=2.0)}
    client = LLMClient(llm_settings)
    r = run(one(client))
    expected = r.usage.prompt_tokens * 1.0 / 1e6 + r.usage.completion_tokens * 2.0 / 1e6
    assert r.usage.cost_usd == pytest.approx(expected) and expected > 0
    assert client.tally.cost_usd == pytest.approx(expected)
    assert "$" in client.tally.line()
    r2 = run(one(client))
    assert r2.usage.cached and r2.usage.cost_usd == 0
    assert client.tally.cost_usd == pytest.approx(expected)


def test_unknown_price_says_cost_unknown(fake_llm, llm_settings):
    client = LLMClient(llm_settings)
    run(one(client))
    assert client.tally.cost_usd == 0 and "cost unknown" in client.tally.line()


def test_rpm_limit_spaces_requests(fake_llm, llm_settings):
    llm_settings.rpm = 120  # 2/s, burst 2
    llm_settings.cache_path = None
    client = LLMClient(llm_settings)

    async def many():
        try:
            return await asyncio.gather(*(client.complete(msgs(f"problem {i}"), ExtractionOutput) for i in range(5)))
        finally:
            await client.aclose()

    t0 = time.monotonic()
    rs = run(many())
    assert all(r.value is not None for r in rs)
    assert time.monotonic() - t0 >= 1.2  # 2 at once, then 3 more at 0.5 s intervals


def test_client_usable_across_event_loops(fake_llm, llm_settings):
    llm_settings.cache_path = None
    client = LLMClient(llm_settings)
    assert client.complete_sync(msgs(), ExtractionOutput).value is not None
    assert client.complete_sync(msgs("x y z"), ExtractionOutput).value is not None


def test_identical_requests_in_flight_are_paid_once(fake_llm, llm_settings):
    fake_llm.set_latency(200)
    client = LLMClient(llm_settings)

    async def dup():
        try:
            return await asyncio.gather(*(client.complete(msgs(), ExtractionOutput)
                                          for _ in range(5)))
        finally:
            await client.aclose()

    rs = run(dup())
    assert all(r.value == rs[0].value for r in rs)
    assert sum(not r.usage.cached for r in rs) == 1
    assert fake_llm.stats()["total"] == 1


def test_tpm_limit_spaces_requests(fake_llm, llm_settings):
    llm_settings.cache_path = None
    llm_settings.max_tokens = 100
    llm_settings.tpm = 6000  # 100 tokens/s; each request is estimated at ~150 tokens
    client = LLMClient(llm_settings)

    async def many():
        try:
            return await asyncio.gather(*(client.complete(msgs(f"problem {i}"), ExtractionOutput) for i in range(3)))
        finally:
            await client.aclose()

    t0 = time.monotonic()
    rs = run(many())
    assert all(r.value is not None for r in rs)
    assert time.monotonic() - t0 >= 0.8


def test_cache_key_includes_the_endpoint_and_the_model(llm_settings, fake_llm):
    """Another server answering to the same model name gives other replies: never replayed
    from the cache (issue 18: 1,600 replies of one server were replayed for another)."""
    msgs = [{"role": "user", "content": "Extract the concepts: what is 2 + 3?"}]
    one = LLMClient(llm_settings.model_copy(update={"fit_to_server": False}))
    other = LLMClient(llm_settings.model_copy(update={"fit_to_server": False,
                                                      "base_url": fake_llm.url.replace("127.0.0.1", "localhost")}))
    same = LLMClient(llm_settings.model_copy(update={"fit_to_server": False, "base_url": fake_llm.url + "/"}))
    renamed = LLMClient(llm_settings.model_copy(update={"fit_to_server": False, "model": "other-model"}))
    key = one.cache_key_for(msgs, ExtractionOutput)
    assert other.cache_key_for(msgs, ExtractionOutput) != key
    assert renamed.cache_key_for(msgs, ExtractionOutput) != key
    assert same.cache_key_for(msgs, ExtractionOutput) == key
    for c in (one, other, same, renamed):
        c.close() if hasattr(c, "close") else None
