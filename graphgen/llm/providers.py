"""LLM providers: a provider is one transport class plus a registration.

    @register("myapi")
    def myapi(settings: LLMSettings, http: str) -> tuple[Transport, LLMSettings]:
        return MyApiTransport(settings.base_url, key_from(settings)), settings

`[llm] provider = "myapi"` (env `GRAPHGEN_LLM_PROVIDER`) picks it. A name not registered in
this process is looked up in the `graphgen.providers` entry-point group (a plugin package
declares `[project.entry-points."graphgen.providers"] myapi = "pkg.mod:myapi"`), or read
as `module:attribute`. The factory may adjust the settings it is given (the OpenAI-compatible
one starts a local llama.cpp server and fits concurrency and timeouts to what the server
says) and returns them with the transport; the client uses the returned settings.

A transport speaks OpenAI's chat-completion shapes to the client (a request body in, a
reply dict with `choices` and `usage` out; `graphgen.llm.transport.Transport`) and translates
to its own wire format. The client adds what every provider shares: the cache, limits,
retries, structured output with re-asks, and the tally.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from typing import Callable

from graphgen.config import LLMSettings
from graphgen.errors import LLMFatalError
from graphgen.llm.transport import OpenAICompatible, Transport
from graphgen.scrub import remember_secret

__all__ = ["Provider", "register", "provider", "open_transport", "api_key", "ENTRY_POINT_GROUP"]

Provider = Callable[[LLMSettings, str], "tuple[Transport, LLMSettings]"]
ENTRY_POINT_GROUP = "graphgen.providers"
_REGISTRY: dict[str, Provider] = {}


def register(name: str) -> Callable[[Provider], Provider]:
    """Register a provider factory under `name` (a decorator)."""

    def add(factory: Provider) -> Provider:
        _REGISTRY[name] = factory
        return factory

    return add


def provider(name: str) -> Provider:
    """The factory for `name`: registered here, from a plugin's entry point, or `module:attr`."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            _REGISTRY[name] = ep.load()
            return _REGISTRY[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise LLMFatalError(f"llm provider {name!r}: cannot load it ({exc})") from None
        _REGISTRY[name] = factory
        return factory
    known = ", ".join(sorted(_REGISTRY))
    raise LLMFatalError(f"unknown llm provider {name!r} (llm.provider / GRAPHGEN_LLM_PROVIDER): known are "
                        f"{known}; a plugin registers more in the {ENTRY_POINT_GROUP!r} entry-point group, "
                        "or give module:attribute")


def open_transport(settings: LLMSettings, http: str = "auto") -> tuple[Transport, LLMSettings]:
    """The transport for `settings.provider` and the settings it fitted."""
    return provider(settings.provider)(settings, http)


def api_key(settings: LLMSettings, env: str = "OPENAI_API_KEY") -> str | None:
    """The key from the settings or `env`, remembered by the scrubber so no file shows it."""
    key = settings.api_key
    secret = key.get_secret_value() if hasattr(key, "get_secret_value") else (key or None)
    secret = secret or os.environ.get(env) or None
    remember_secret(secret)
    return secret


@register("openai")
def openai_compatible(settings: LLMSettings, http: str) -> tuple[Transport, LLMSettings]:
    """OpenAI, or any OpenAI-compatible server (llama.cpp, vLLM, Ollama, LM Studio, ...);
    with `local_model`, a llama.cpp server graphgen starts for the run. `http`: "auto"
    (aiohttp when installed), "aiohttp" or "httpx"."""
    if settings.local_model is not None:
        from graphgen.llm.local import shared_server

        settings = settings.model_copy(update={"base_url": shared_server(settings).url})
    if settings.fit_to_server and settings.base_url:
        from graphgen.llm.serverinfo import fit_cached

        settings = fit_cached(settings)
    secret = api_key(settings)
    if not secret and not settings.base_url:
        raise LLMFatalError(
            "no API key: set OPENAI_API_KEY (or llm.api_key in the config), "
            "or point OPENAI_BASE_URL at a local OpenAI-compatible server"
        )
    transport = OpenAICompatible(settings.base_url, secret, timeout=settings.timeout,
                                 connections=settings.concurrency, http=http)
    return transport, settings


@register("anthropic")
def anthropic(settings: LLMSettings, http: str) -> tuple[Transport, LLMSettings]:
    """Anthropic's Messages API (`graphgen.llm.anthropic`); key from ANTHROPIC_API_KEY or
    llm.api_key (never OPENAI_API_KEY's value: that key is not Anthropic's to see)."""
    from graphgen.llm.anthropic import AnthropicMessages

    configured = settings.api_key.get_secret_value() if settings.api_key is not None else None
    if configured and configured == os.environ.get("OPENAI_API_KEY"):
        configured = None
    secret = os.environ.get("ANTHROPIC_API_KEY") or configured or None
    remember_secret(secret)
    if not secret and not settings.base_url:
        raise LLMFatalError("no API key: set ANTHROPIC_API_KEY (or llm.api_key in the config)")
    if settings.structured_output != "text":
        # the schema goes in the prompt; the client validates the reply and re-asks
        settings = settings.model_copy(update={"structured_output": "text"})
    transport = AnthropicMessages(settings.base_url, secret, timeout=settings.timeout,
                                  connections=settings.concurrency)
    return transport, settings
