"""The LLM layer: one client for every stage (structured output, limits, retries, cache,
cost accounting). Stages call `LLMClient.complete` or `graphgen.runner.run_jobs`; nothing
else in graphgen imports `openai`."""

from graphgen.llm.cache import ResponseCache, cache_key
from graphgen.llm.client import LLMClient, LLMFatalError, LLMResult, LLMTotals, load_schema
from graphgen.llm.jsonrepair import JSONRepairError, parse_json_object

__all__ = [
    "LLMClient",
    "LLMFatalError",
    "LLMResult",
    "LLMTotals",
    "ResponseCache",
    "JSONRepairError",
    "cache_key",
    "load_schema",
    "parse_json_object",
]
