#!/usr/bin/env python3
"""Check Neo4j Browser as a user would and keep a screenshot: start the local server, log
in through Browser's connect form, load the 300 annotated example seeds through
Neo4jStore, open Browser in headless Chromium (Debian's `chromium` package), load
cypher/graphgen.grass, run an exploration query from cypher/explore.cypher and save a PNG.

    PYTHONPATH=. python neo4j/screenshot.py [--query concept_neighbourhood] [-o docs/neo4j-browser.png]

Chromium is driven over the DevTools protocol by tests/chromium.py (the launcher the report
tests use too).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))



def load_examples(store) -> str:
    """The example seeds and annotations, plus a few generated rows; returns a busy topic."""
    from graphgen.graph import rebuild
    from graphgen.records import Extraction, GeneratedQuestion, SeedQuestion

    seeds = [SeedQuestion(**{k: v for k, v in json.loads(line).items() if k in SeedQuestion.model_fields})
             for line in (REPO / "examples" / "seeds.jsonl").read_text().splitlines() if line.strip()]
    extractions = [Extraction(**json.loads(line))
                   for line in (REPO / "examples" / "annotations.jsonl").read_text().splitlines() if line.strip()]
    store.add_seeds(seeds)
    store.add_extractions(extractions)
    rebuild(store)
    concepts = sorted(store.concepts(), key=lambda c: (-c.frequency, c.id))
    topic = next(c for c in concepts if c.kind.value == "topic")
    kps = [c for c in concepts if c.kind.value == "kp" and topic.id in {e.source for e in store.edges()
                                                                         if e.target == c.id}][:4]
    store.add_generated([
        GeneratedQuestion(id=f"gen-{i}", kind="concepts", question=f"Generated question {i}", solution="...",
                          answer=str(i), concept_ids=[topic.id, kp.id], exemplar_seed_ids=topic.seed_ids[i:i + 2])
        for i, kp in enumerate(kps)
    ])
    return topic.display_name


async def drive(http: str, bolt: str, user: str, password: str, grass: str, query: str,
                params: dict, out: Path) -> None:
    from chromium import devtools_page  # tests/chromium.py: the one Chromium launcher

    async with devtools_page(1600, 1000) as cdp:
        await cdp.call("Page.enable")
        browser = f"{http}/browser/"
        # open Browser with the query in the editor (?cmd=edit), log in
        await cdp.call("Page.navigate", url=f"{browser}?dbms={quote(bolt)}&cmd=edit&arg={quote(query)}")
        connected_js = ("document.body.innerText.includes('You are connected') || "
                        "document.body.innerText.includes('Connected to Neo4j')")
        await cdp.wait_js(f"{connected_js} || !!document.querySelector('[data-testid=\"connect\"]')", 90)
        if not await cdp.js(connected_js):  # the login form, as a user sees it
            await fill(cdp, "[data-testid=\"username\"]", user)
            await fill(cdp, "[data-testid=\"password\"]", password)
            await cdp.js("document.querySelector('[data-testid=\"connect\"]').click(); true")
        if not await cdp.wait_js(connected_js, 90):
            raise RuntimeError("Browser did not connect to the server: "
                               + str(await cdp.js("document.body.innerText.slice(0, 500)")))
        await asyncio.sleep(2)
        # load the style as the docs tell users to: `:style` followed by the file
        await run_in_editor(cdp, ":style " + " ".join(grass.split()))
        for name, value in params.items():  # :param lines, run through the editor too
            await run_in_editor(cdp, f":param {name} => {json.dumps(value)}")
        await run_in_editor(cdp, query)
        ok = await cdp.wait_js("document.querySelectorAll('svg .node, [data-testid=\"graphCanvas\"] .node').length > 0", 60)
        await asyncio.sleep(6)  # let the force layout settle
        shot = await cdp.call("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))
        if not ok:
            raise RuntimeError(f"no graph drawn (screenshot saved anyway to {out})")


async def fill(cdp, selector: str, text: str) -> None:
    """Type into an input as a user would (React sees real input events)."""
    await cdp.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.focus(); e.select(); }})()")
    await cdp.call("Input.insertText", text=text)


async def run_in_editor(cdp, text: str) -> None:
    """Replace the editor's content with `text` (via Monaco's model) and press Run."""
    await cdp.wait_js("!!document.querySelector('.monaco-editor')", 30)
    done = await cdp.js(
        "(() => { const m = window.monaco && window.monaco.editor.getModels();"
        f" if (!m || !m.length) return false; m[0].setValue({json.dumps(text)}); return true; }})()")
    if not done:  # no global monaco: type it through the focused textarea
        await cdp.js("document.querySelector('.monaco-editor textarea').focus(); true")
        await cdp.call("Input.dispatchKeyEvent", type="keyDown", modifiers=2, key="a", code="KeyA",
                       windowsVirtualKeyCode=65)
        await cdp.call("Input.dispatchKeyEvent", type="keyUp", modifiers=2, key="a", code="KeyA",
                       windowsVirtualKeyCode=65)
        await cdp.call("Input.insertText", text=text)
    await asyncio.sleep(0.5)
    clicked = await cdp.js(
        "(() => { const b = document.querySelector('[data-testid=\"editor-Run\"]')"
        " || [...document.querySelectorAll('button')].find(x => /run/i.test(x.title || x.ariaLabel || ''));"
        " if (!b) return false; b.click(); return true; })()")
    if not clicked:
        raise RuntimeError("could not find Browser's Run button")
    await asyncio.sleep(2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--query", default="concept_neighbourhood", help="a query name from cypher/explore.cypher")
    ap.add_argument("-o", "--output", default=str(REPO / "docs" / "neo4j-browser.png"))
    args = ap.parse_args(argv)
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        print("error: chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        return 1

    from neo4j_fixtures import load_server_module

    from graphgen.explore import cypher_file, explore_queries
    from graphgen.store.neo4j import Neo4jStore

    server_mod = load_server_module()
    server = server_mod.start()
    print(f"server up in {server.started_in:.1f} s: {server.browser_url}")
    try:
        with Neo4jStore(server.bolt_uri, server.user, server.password) as store:
            topic = load_examples(store)
        q = explore_queries()[args.query]
        params = {p: topic for p in q.params}
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        asyncio.run(drive(server.http_uri, server.bolt_uri, server.user, server.password, cypher_file("graphgen.grass"),
                          q.text + ";", params, out))
        print(f"wrote {out} ({args.query}, params {params})")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
