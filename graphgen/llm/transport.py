"""The transport: one HTTP exchange with an LLM provider, behind a small protocol.

    transport = OpenAICompatible(base_url, api_key, timeout=120, connections=16)
    reply = await transport.post("/chat/completions", body)    # a dict, or TransportError

A transport knows URLs, authentication, connection pools and how the provider reports
errors; it does not retry, cache, limit or count (the client does). Another provider
(an SDK with another wire format) is one class with the same three methods.

Every failure is a `TransportError` with a `kind` the client can act on:
"status" (an HTTP error reply; `status`, `message`, `retry_after`), "timeout",
"refused" (nothing listens at the address), "dns" (host not found), "connect" (another
connection failure), "bad_response" (a 200 that is not JSON). Messages are scrubbed.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time
from typing import Any, Protocol

import httpx2
import openai

from graphgen.scrub import remember_secret, scrub

try:
    from orjson import dumps as _dumps
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    from json import loads as _loads

    def _dumps(obj) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")

__all__ = ["Transport", "TransportError", "OpenAICompatible", "OPENAI_URL"]

OPENAI_URL = "https://api.openai.com/v1"


class TransportError(Exception):
    def __init__(self, kind: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None, url: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.url = url


class Transport(Protocol):
    base_url: str

    async def post(self, path: str, body: dict) -> dict:
        """POST `body` as JSON to `path` (relative to base_url); the reply as a dict."""

    async def get(self, path: str) -> dict:
        """GET `path`; the reply as a dict."""

    async def aclose(self) -> None:
        """Close the connections of the current event loop."""


class OpenAICompatible:
    """Any OpenAI-compatible HTTP API (OpenAI, llama.cpp, vLLM, Ollama, LM Studio, ...).

    With aiohttp (``http="auto"`` or ``"aiohttp"``, the default) each request is the body
    serialised once (orjson) and posted through one aiohttp session per event loop whose
    headers (auth, content type, user agent) are built once: the SDK's per-call request
    building (header objects, an auth generator, option models; ~0.5 ms of CPU a request,
    the largest part of the client's cost) is skipped. ``http="httpx"`` (or aiohttp missing)
    goes through the `openai` SDK's raw-request path (`post(..., cast_to=httpx2.Response)`),
    which also skips the typed `create()`'s transforms and response models. Errors are
    classified alike either way; retries are the client's (the SDK's max_retries=0)."""

    def __init__(self, base_url: str | None, api_key: str | None, *, timeout: float = 120.0,
                 connections: int = 16, http: str = "auto"):
        self.base_url = (base_url or OPENAI_URL).rstrip("/")
        self._key = api_key
        remember_secret(api_key)
        self.timeout = timeout
        self.connections = max(1, connections)
        self.http = http
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sdk: Any = None
        self._session: Any = None  # the aiohttp session of `_session_loop`
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._aiohttp = None
        if http in ("auto", "aiohttp"):
            try:
                import aiohttp

                self._aiohttp = aiohttp
            except ImportError:
                if http == "aiohttp":
                    raise
        try:
            from importlib.metadata import version

            agent = f"graphgen/{version('graphgen')}"
        except Exception:  # pragma: no cover - running from a source tree
            agent = "graphgen"
        # what the SDK sends, built once ("EMPTY" for servers without keys, as the SDK does)
        self._headers = {"Authorization": f"Bearer {api_key or 'EMPTY'}", "Content-Type": "application/json",
                         "Accept": "application/json", "User-Agent": agent}

    def __repr__(self) -> str:
        return f"OpenAICompatible({self.base_url!r})"

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._sdk is None or self._loop is not loop:
            n = self.connections
            limits = httpx2.Limits(max_connections=n, max_keepalive_connections=n)
            timeout = httpx2.Timeout(self.timeout, connect=min(self.timeout, 30.0))
            http_client = None
            if self.http in ("auto", "aiohttp"):
                try:
                    http_client = openai.DefaultAioHttpClient(limits=limits, timeout=timeout)
                except Exception:
                    if self.http == "aiohttp":
                        raise
            if http_client is None:
                http_client = openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout)
            self._sdk = openai.AsyncOpenAI(api_key=self._key or "EMPTY", base_url=self.base_url,
                                           max_retries=0, timeout=self.timeout, http_client=http_client)
            self._loop = loop
        return self._sdk

    def sdk(self) -> Any:
        """The openai SDK client for this loop (the Batch API's files and batches calls)."""
        return self._client()

    def _http(self) -> Any:
        """The aiohttp session of the running event loop (one per loop: a session is bound
        to the loop that made it, and Ray tasks or tests run several loops in turn)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop or self._session.closed:
            aiohttp = self._aiohttp
            n = self.connections
            connector = aiohttp.TCPConnector(limit=n, limit_per_host=n, ttl_dns_cache=300)
            # per-read and connect bounds, as the SDK's httpx timeout (not a total: the client
            # bounds each job as a whole)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(self.timeout, 30.0),
                                            sock_read=self.timeout)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers,
                                                  skip_auto_headers=("User-Agent",))
            self._session_loop = loop
        return self._session

    async def _exchange(self, method: str, path: str, data: bytes | None = None) -> dict:
        aiohttp = self._aiohttp
        url = self.base_url + path
        try:
            async with self._http().request(method, url, data=data) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except asyncio.TimeoutError:
            raise TransportError("timeout", f"timeout after {self.timeout:g}s", url=url) from None
        except aiohttp.ClientConnectorError as exc:
            raise self._connection_error(path, exc) from None
        except aiohttp.ClientError as exc:
            raise self._connection_error(path, exc) from None
        if status >= 400:
            raise self._status_reply(path, status, raw, headers)
        try:
            data_ = _loads(raw)
        except Exception:
            try:  # orjson refuses lone surrogates (half an emoji), which some servers send
                data_ = json.loads(raw)
            except ValueError:
                raise TransportError("bad_response", "http 200 with a body that is not JSON", url=url) from None
        if not isinstance(data_, dict):
            raise TransportError("bad_response", "http 200 with a body that is not a JSON object", url=url)
        return data_

    async def post(self, path: str, body: dict) -> dict:
        if self._aiohttp is not None:
            return await self._exchange("POST", path, _dumps(body))
        sdk = self._client()
        try:
            resp = await sdk.post(path, cast_to=httpx2.Response, body=body)
        except openai.APIStatusError as exc:
            raise self._status_error(path, exc) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise self._connection_error(path, exc) from None
        except openai.APIError as exc:
            raise TransportError("bad_response", scrub(str(exc))[:300], url=self.base_url + path) from None
        try:
            data = _loads(resp.content)
        except Exception:
            try:  # orjson refuses lone surrogates (half an emoji), which some servers send
                data = json.loads(resp.content)
            except ValueError:
                raise TransportError("bad_response", "http 200 with a body that is not JSON",
                                     url=self.base_url + path) from None
        if not isinstance(data, dict):
            raise TransportError("bad_response", "http 200 with a body that is not a JSON object",
                                 url=self.base_url + path)
        return data

    async def get(self, path: str) -> dict:
        if self._aiohttp is not None:
            return await self._exchange("GET", path)
        sdk = self._client()
        try:
            resp = await sdk.get(path, cast_to=httpx2.Response)
            return _loads(resp.content)
        except openai.APIStatusError as exc:
            raise self._status_error(path, exc) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise self._connection_error(path, exc) from None
        except Exception as exc:
            raise TransportError("bad_response", scrub(str(exc))[:300], url=self.base_url + path) from None

    async def aclose(self) -> None:
        session, self._session, self._session_loop = self._session, None, None
        if session is not None and not session.closed:
            try:
                await session.close()
            except Exception:  # pragma: no cover
                pass
        sdk, self._sdk, self._loop = self._sdk, None, None
        if sdk is not None:
            try:
                await sdk.close()
            except Exception:  # pragma: no cover
                pass

    # -- error classification ----------------------------------------------------------------

    def _status_error(self, path: str, exc: openai.APIStatusError) -> TransportError:
        msg = getattr(exc, "message", None) or str(exc)
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            inner = body.get("error", body)
            if isinstance(inner, dict) and inner.get("message"):
                msg = str(inner["message"])
            elif isinstance(inner, dict) and inner.get("detail"):  # FastAPI servers (llama-cpp-python)
                msg = str(inner["detail"])
            elif isinstance(inner, str):
                msg = inner
        headers = exc.response.headers if exc.response is not None else None
        return TransportError("status", scrub(str(msg))[:500], status=exc.status_code,
                              retry_after=retry_after(headers), url=self.base_url + path)

    def _status_reply(self, path: str, status: int, raw: bytes, headers) -> TransportError:
        """An HTTP error reply, read as the SDK reads one: the JSON body's error message (or a
        FastAPI `detail`), else the text."""
        msg = None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            inner = body.get("error", body)
            if isinstance(inner, dict) and inner.get("message"):
                msg = str(inner["message"])
            elif isinstance(inner, dict) and inner.get("detail"):
                msg = str(inner["detail"])
            elif isinstance(inner, str):
                msg = inner
        if msg is None:
            text = raw.decode("utf-8", "replace").strip()
            msg = f"Error code: {status}" + (f" - {text}" if text else "")
        return TransportError("status", scrub(msg)[:500], status=status, retry_after=retry_after(headers),
                              url=self.base_url + path)

    def _connection_error(self, path: str, exc: Exception) -> TransportError:
        url = self.base_url + path
        os_error = getattr(exc, "os_error", None)  # aiohttp's ClientConnectorError
        if isinstance(os_error, ConnectionRefusedError):
            return TransportError("refused", f"connection refused at {self.base_url}", url=url)
        if isinstance(os_error, socket.gaierror):
            host = httpx2.URL(self.base_url).host
            return TransportError("dns", f"host not found: {host} (in {self.base_url})", url=url)
        seen: Exception | None = exc
        while seen is not None:
            # aiohttp reports a refused connection as a connect *timeout*: look at the cause
            if isinstance(seen, ConnectionRefusedError):
                return TransportError("refused", f"connection refused at {self.base_url}", url=url)
            if isinstance(seen, socket.gaierror):
                host = httpx2.URL(self.base_url).host
                return TransportError("dns", f"host not found: {host} (in {self.base_url})", url=url)
            seen = seen.__cause__ or seen.__context__
        if isinstance(exc, openai.APITimeoutError):
            return TransportError("timeout", f"timeout after {self.timeout:g}s", url=url)
        detail = scrub(str(exc.__cause__ or exc))[:200]
        return TransportError("connect", f"connection error at {self.base_url}: {detail}", url=url)


def retry_after(headers) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, Retry-After seconds or date)."""
    if headers is None:
        return None
    v = headers.get("retry-after-ms")
    if v:
        try:
            return max(0.0, float(v) / 1000.0)
        except ValueError:
            pass
    v = headers.get("retry-after")
    if v:
        try:
            return max(0.0, float(v))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(v)
            except (TypeError, ValueError, IndexError):
                return None
            return max(0.0, parsed.timestamp() - time.time())
    return None


