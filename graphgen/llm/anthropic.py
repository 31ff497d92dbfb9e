"""Anthropic's Messages API as a transport (`[llm] provider = "anthropic"`).

The client speaks OpenAI's chat-completion shapes; this class translates one request to
`POST {base}/messages` and its reply back: system messages become `system`, `max_tokens`
is always sent (the API requires it), temperature is capped at 1 (the API's range),
`seed` and OpenAI's `response_format` are dropped (the provider runs in the `text`
structured-output mode: the schema goes in the system prompt and the client validates and
re-asks as for any server). `stop_reason` `max_tokens` maps to `finish_reason` `length`,
so a cut reply is handled as one. The connection pool and error classification are the
OpenAI-compatible transport's (Anthropic's error bodies carry `error.message` too).
"""

from __future__ import annotations

from graphgen.llm.transport import OpenAICompatible, TransportError, _dumps

__all__ = ["AnthropicMessages", "ANTHROPIC_URL", "to_messages_request", "to_chat_completion"]

ANTHROPIC_URL = "https://api.anthropic.com/v1"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
           "refusal": "content_filter"}


def to_messages_request(body: dict) -> dict:
    """A chat-completion request body as a Messages API body."""
    system: list[str] = []
    turns: list[dict] = []
    for m in body.get("messages") or []:
        content = m.get("content")
        if not isinstance(content, str):
            content = "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
        if m.get("role") == "system":
            system.append(content)
        elif turns and turns[-1]["role"] == m.get("role"):  # the API wants turns to alternate
            turns[-1]["content"] += "\n\n" + content
        else:
            turns.append({"role": m.get("role", "user"), "content": content})
    out: dict = {"model": body["model"], "max_tokens": body.get("max_tokens") or DEFAULT_MAX_TOKENS,
                 "messages": turns}
    if system:
        out["system"] = "\n\n".join(system)
    if body.get("temperature") is not None:
        out["temperature"] = min(1.0, max(0.0, float(body["temperature"])))
    return out


def to_chat_completion(reply: dict) -> dict:
    """A Messages API reply as a chat completion (content, finish_reason, usage)."""
    blocks = reply.get("content")
    if not isinstance(blocks, list):
        raise TransportError("bad_response", "http 200 with a body that is not a Messages API reply")
    text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    usage = reply.get("usage") or {}
    return {
        "id": reply.get("id"),
        "model": reply.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": _FINISH.get(reply.get("stop_reason"), "stop")}],
        "usage": {"prompt_tokens": usage.get("input_tokens") or 0,
                  "completion_tokens": usage.get("output_tokens") or 0},
    }


class AnthropicMessages(OpenAICompatible):
    """Anthropic's Messages API (or a server that speaks it) at `base_url` (default
    https://api.anthropic.com/v1), authenticated with `x-api-key`."""

    sdk = None  # no OpenAI Batch API here: the batch engine refuses this transport
    key_env = "ANTHROPIC_API_KEY"  # named in the error a 401 or 403 stops the run with

    def __init__(self, base_url: str | None, api_key: str | None, *, timeout: float = 120.0,
                 connections: int = 16):
        super().__init__(base_url or ANTHROPIC_URL, api_key, timeout=timeout, connections=connections,
                         http="aiohttp")
        agent = self._headers["User-Agent"]
        self._headers = {"x-api-key": api_key or "", "anthropic-version": API_VERSION,
                         "Content-Type": "application/json", "Accept": "application/json", "User-Agent": agent}

    def __repr__(self) -> str:
        return f"AnthropicMessages({self.base_url!r})"

    async def post(self, path: str, body: dict) -> dict:
        if path != "/chat/completions":
            raise TransportError("status", f"{path} is not offered by the Anthropic Messages API "
                                 "(embeddings: use [embedding] provider = \"sentence-transformers\")",
                                 status=404, url=self.base_url + path)
        reply = await self._exchange("POST", "/messages", _dumps(to_messages_request(body)))
        return to_chat_completion(reply)
