"""Dry-run cost estimates: render every prompt, count its tokens, price the run.

`run_price(settings, model)` is the price a run will pay: the online price, or on the Batch
API (`--batch`, `[engine] kind = "batch"`) that price times `[engine] batch_price_factor`
(half, by default), so every stage's `--dry-run` prices what the chosen engine charges and
says which (`pricing` in the estimate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from graphgen.config import Price, Settings


def run_price(settings: Settings, model: str) -> tuple[Price | None, str]:
    """The price per million tokens a run on `settings.engine` pays for `model`, and what it is
    ("online", or "Batch API: 0.5 x online")."""
    price = settings.llm.price_for(model)
    if settings.engine.kind != "batch":
        return price, "online"
    factor = settings.engine.batch_price_factor
    basis = f"Batch API: {factor:g} x online"
    if price is None:
        return None, basis
    return Price(input=price.input * factor, output=price.output * factor), basis


def token_counter() -> tuple[Callable[[str], int], str]:
    """tiktoken's o200k_base when it is installed and its data is available, else chars/4."""
    try:
        import tiktoken

        enc = tiktoken.get_encoding("o200k_base")
        return (lambda text: len(enc.encode(text))), "tiktoken o200k_base"
    except Exception:  # tiktoken missing, or its data not downloadable offline
        return (lambda text: max(1, len(text) // 4)), "chars/4"


def estimate_calls(
    message_lists: Iterable[list[dict[str, str]]], model: str, price: Price | None,
    completion_tokens_per_call: int, *, pricing: str = "online",
) -> dict:
    """Totals for one LLM call per message list (4 tokens of framing per message)."""
    count, method = token_counter()
    calls = prompt_tokens = 0
    first = None
    for messages in message_lists:
        calls += 1
        first = first or messages
        prompt_tokens += sum(count(m["content"]) + 4 for m in messages)
    completion = completion_tokens_per_call * calls
    cost = None if price is None else (prompt_tokens * price.input + completion * price.output) / 1e6
    return {
        "calls": calls, "model": model, "prompt_tokens": prompt_tokens,
        "completion_tokens_estimate": completion, "cost_usd_estimate": cost, "pricing": pricing,
        "token_count_method": method, "first_prompt": first,
    }
