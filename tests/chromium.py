"""Open a local HTML file in real headless Chromium (Debian's `chromium`) over the DevTools
protocol, as a person would: what the page logged to the console, which network requests it
made, values of DOM expressions, and a full-page screenshot. `devtools_page` and `CDP` are
also what `neo4j/screenshot.py` drives Neo4j Browser with."""

from __future__ import annotations

import asyncio
import base64
import itertools
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("chromium not found (Debian: apt-get install chromium)")
    return path


@dataclass
class PageVisit:
    values: dict[str, object]
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""


class CDP:
    """One page over the DevTools protocol; events that arrive between replies are kept."""

    def __init__(self, ws):
        self.ws, self.ids, self.events = ws, itertools.count(1), []

    async def call(self, method: str, **params):
        msg_id = next(self.ids)
        await self.ws.send_json({"id": msg_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    async def js(self, expression: str, *, await_promise: bool = False):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    async def wait_js(self, expression: str, timeout: float = 60.0) -> bool:
        """Poll until `expression` is truthy (one that throws, e.g. before the page has a
        body, counts as not yet); False if it never became so within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await self.js(expression, await_promise=True):
                    return True
            except RuntimeError:
                pass
            await asyncio.sleep(0.5)
        return False


@asynccontextmanager
async def devtools_page(width: int = 1280, height: int = 900, timeout: float = 90.0) -> AsyncIterator[CDP]:
    """Launch headless Chromium with a fresh profile and a free DevTools port, and yield its
    first page; the browser is stopped and the profile removed on exit."""
    import aiohttp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="graphgen-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen([chromium_path(), *FLAGS, f"--user-data-dir={profile}",
                                 f"--window-size={width},{height}", f"--remote-debugging-port={port}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            async with aiohttp.ClientSession() as http:
                deadline = time.monotonic() + timeout
                pages = []
                while not pages:
                    if time.monotonic() > deadline:
                        raise RuntimeError("chromium's DevTools endpoint did not come up")
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                            pages = [p for p in await r.json() if p.get("type") == "page"]
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.3)
                async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    cdp = CDP(ws)
                    await cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                                   deviceScaleFactor=1, mobile=False)
                    yield cdp
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def visit(page: Path, expressions: dict[str, str], width: int = 1280, timeout: float = 90.0) -> PageVisit:
    """Load `page`, evaluate each JS expression once it has loaded, screenshot the whole page."""
    return asyncio.run(_visit(page.resolve(), expressions, width, timeout))


async def _visit(page: Path, expressions: dict[str, str], width: int, timeout: float) -> PageVisit:
    deadline = time.monotonic() + timeout
    async with devtools_page(width, timeout=timeout) as cdp:
        for domain in ("Page", "Runtime", "Log", "Network"):
            await cdp.call(f"{domain}.enable")
        await cdp.call("Page.navigate", url=page.as_uri())
        while await cdp.js("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{page} did not finish loading")
            await asyncio.sleep(0.2)
        values = {name: await cdp.js(expr) for name, expr in expressions.items()}
        height = int(await cdp.js("document.documentElement.scrollHeight"))
        await cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                       deviceScaleFactor=1, mobile=False)
        shot = await cdp.call("Page.captureScreenshot", format="png")
        await asyncio.sleep(0.2)
        await cdp.js("1")  # drain events that arrived meanwhile
        visit = PageVisit(values=values, screenshot=base64.b64decode(shot["data"]))
        for ev in cdp.events:
            method, p = ev["method"], ev.get("params", {})
            if method == "Runtime.exceptionThrown":
                visit.console_errors.append(str(p.get("exceptionDetails", {}).get("text")))
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                visit.console_errors.append(" ".join(str(a.get("value")) for a in p.get("args", [])))
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                visit.console_errors.append(str(p["entry"].get("text")))
            elif method == "Network.requestWillBeSent":
                visit.requests.append(p.get("request", {}).get("url", ""))
        return visit
