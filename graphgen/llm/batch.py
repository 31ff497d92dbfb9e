"""The OpenAI Batch API behind the same client: request lines built exactly as the online
path builds a chat completion (model, structured output, temperature, max_tokens, seed), reply
lines read through the same validation (`read_reply`), priced at the batch price.

    api = BatchAPI(client, price_factor=0.5)
    line = api.request_line(key, messages, ExtractionOutput)
    file_id = await api.upload(path); batch = await api.create(file_id, "24h", {"graphgen_chunk": uid})
    for key, result in api.results(output_bytes, error_bytes, outputs_by_key): ...

The SDK does the HTTP (auth, retries of its own are off, timeouts); the API key stays in it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
from pydantic import BaseModel

from graphgen.llm.client import LLMClient, LLMResult, read_reply
from graphgen.records import LLMUsage
from graphgen.scrub import scrub

__all__ = ["BatchAPI", "BatchRejected"]

_POLL_RETRIES = 5


class BatchRejected(RuntimeError):
    """The endpoint does not take Batch API requests (no /files or /batches, or refuses them)."""


class BatchAPI:
    def __init__(self, client: LLMClient, price_factor: float = 0.5):
        self.client = client
        self.factor = price_factor

    @property
    def sdk(self):
        transport = self.client.transport
        if getattr(transport, "sdk", None) is None:
            raise BatchRejected(f"the transport {transport!r} has no Batch API")
        return transport.sdk()

    def request_line(self, key: str, messages: list[dict], output: type[BaseModel]) -> dict:
        body = self.client.request_body(messages, output)
        return {"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body}

    async def _call(self, what: str, coro_fn):
        """One Batch API call, with a few retries for transient faults; 404/400/405 mean the
        endpoint has no Batch API (or refuses this use of it)."""
        for attempt in range(_POLL_RETRIES + 1):
            try:
                return await coro_fn()
            except openai.APIStatusError as exc:
                if exc.status_code in (400, 404, 405, 415, 501):
                    raise BatchRejected(f"HTTP {exc.status_code} on {what}: {_err_text(exc)[:160]}") from None
                if exc.status_code in (401, 403):
                    from graphgen.errors import LLMFatalError

                    raise LLMFatalError(f"HTTP {exc.status_code} from the Batch API: {_err_text(exc)}") from None
                if attempt == _POLL_RETRIES:
                    raise
            except (openai.APIConnectionError, openai.APITimeoutError):
                if attempt == _POLL_RETRIES:
                    raise
            await asyncio.sleep(min(30.0, 0.5 * 2 ** attempt))

    async def upload(self, path: Path) -> str:
        data = Path(path).read_bytes()
        f = await self._call("/files", lambda: self.sdk.files.create(file=(Path(path).name, data), purpose="batch"))
        return f.id

    async def create(self, file_id: str, window: str, metadata: dict[str, str]) -> dict:
        b = await self._call("/batches", lambda: self.sdk.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window=window, metadata=metadata))
        return b.model_dump()

    async def find(self, metadata_key: str, value: str, pages: int = 5) -> dict | None:
        """A batch created earlier with metadata[key] == value (a run killed between creating
        a batch and saving its id must not create it twice)."""
        after = None
        for _ in range(pages):
            kwargs = {"limit": 100, **({"after": after} if after else {})}
            page = await self._call("/batches", lambda: self.sdk.batches.list(**kwargs))
            for b in page.data:
                if (b.metadata or {}).get(metadata_key) == value:
                    return b.model_dump()
            if not page.has_more or not page.data:
                return None
            after = page.data[-1].id
        return None

    async def retrieve(self, batch_id: str) -> dict:
        b = await self._call("/batches", lambda: self.sdk.batches.retrieve(batch_id))
        return b.model_dump()

    async def cancel(self, batch_id: str) -> None:
        await self._call("/batches", lambda: self.sdk.batches.cancel(batch_id))

    async def content(self, file_id: str | None) -> bytes:
        if not file_id:
            return b""
        r = await self._call("/files", lambda: self.sdk.files.content(file_id))
        return r.content

    def result(self, line: dict, output: type[BaseModel]) -> LLMResult:
        """One output- or error-file line as the online path's LLMResult."""
        response = line.get("response") or {}
        status = response.get("status_code")
        body = response.get("body") or {}
        if status != 200 or line.get("error"):
            err = line.get("error") or (body.get("error") if isinstance(body, dict) else None) or {}
            message = err.get("message") if isinstance(err, dict) else str(err)
            return LLMResult(None, "", f"batch request failed: http {status}: {message}",
                             LLMUsage(model=self.client.model), 1, 0)
        usage = body.get("usage") or {}
        pt, ct = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        value, raw, error = read_reply(body, output)
        cost = self.client.cost(pt, ct) * self.factor
        return LLMResult(value, raw, error, LLMUsage(model=self.client.model, prompt_tokens=pt,
                                                     completion_tokens=ct, cost_usd=cost), 1, 0)


def read_lines(data: bytes):
    for line in data.splitlines():
        if line.strip():
            yield json.loads(line)


def _err_text(exc: openai.APIStatusError) -> str:
    return scrub(str(getattr(exc, "message", "") or exc))
