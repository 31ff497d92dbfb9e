"""The fake server itself: deterministic replies, embeddings, scripting, stats."""

import json
import math
import urllib.request

from fake_openai import KNOWLEDGE_POINTS, TOPICS, extraction_for


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_extraction_is_deterministic_and_plausible():
    a = extraction_for("A train travels 60 km in 1.5 hours. What is its speed?")
    assert a == extraction_for("A train travels 60 km in 1.5 hours. What is its speed?")
    assert 1 <= len(a["topics"]) <= 2 and 1 <= len(a["knowledge_points"]) <= 5
    assert set(a["topics"]) <= set(TOPICS) and set(a["knowledge_points"]) <= set(KNOWLEDGE_POINTS)
    assert len(TOPICS) == 80 and len(KNOWLEDGE_POINTS) == 800
    words = [f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}x" for i in range(600)]
    texts = [f"{words[i]} {words[i + 300]} shared" for i in range(300)]
    many = {t for text in texts for t in extraction_for(text)["topics"]}
    assert len(many) > 40


def test_embeddings_are_deterministic_unit_vectors(fake_llm):
    body = {"model": "e", "input": ["alpha", "beta", "alpha"]}
    r = post(fake_llm.url + "/embeddings", body)
    vecs = [d["embedding"] for d in r["data"]]
    assert len(vecs) == 3 and all(len(v) == 384 for v in vecs)
    assert vecs[0] == vecs[2] and vecs[0] != vecs[1]
    assert abs(math.sqrt(sum(x * x for x in vecs[1])) - 1) < 1e-9
    assert r["usage"]["prompt_tokens"] > 0


def test_script_match_and_stats(fake_llm):
    fake_llm.script([{"content": "hello", "match": "SECOND"}])
    m1 = {"model": "m", "messages": [{"role": "user", "content": "FIRST label topics"}]}
    m2 = {"model": "m", "messages": [{"role": "user", "content": "SECOND label topics"}]}
    r1 = post(fake_llm.url + "/chat/completions", m1)
    r2 = post(fake_llm.url + "/chat/completions", m2)
    post(fake_llm.url + "/chat/completions", m1)
    assert r1["choices"][0]["message"]["content"] != "hello"
    assert r2["choices"][0]["message"]["content"] == "hello"
    st = fake_llm.stats()
    assert st["total"] == 3 and sorted(st["by_hash"].values()) == [1, 2] and st["pending_faults"] == 0
