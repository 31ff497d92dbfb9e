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
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    from json import loads as _loads

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
    """Any OpenAI-compatible HTTP API (OpenAI, llama.cpp, vLLM, Ollama, LM Studio, ...),
    through the `openai` SDK's raw-request path: `post(..., cast_to=httpx2.Response)` skips
    the typed `create()`'s recursive transform of the request and the pydantic response
    models (about 1 ms of CPU per request, which matters at 1,000+ requests/s). The SDK does
    auth, headers and error types; retries are the client's (max_retries=0)."""

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

    async def post(self, path: str, body: dict) -> dict:
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

    def _connection_error(self, path: str, exc: Exception) -> TransportError:
        url = self.base_url + path
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


