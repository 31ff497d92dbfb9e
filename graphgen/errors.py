"""One-line error text: what users see of an exception (the CLI prints one line, never a
traceback; failure files keep one line per reason). Secrets are masked (`graphgen.scrub`)."""

from __future__ import annotations

from graphgen.scrub import scrub

MAX_CHARS = 300


def one_line(error: BaseException | str, *, whole: bool = False) -> str:
    """An exception's (or a text's) message as one line.

    By default the first non-empty line (pydantic and most libraries put the gist there);
    `whole=True` joins every line instead, capped at MAX_CHARS, for drivers such as Neo4j's
    whose first line alone does not say what failed. An exception with no message gives
    its type name.
    """
    text = scrub(str(error)).strip()
    if not text:
        return type(error).__name__ if isinstance(error, BaseException) else ""
    if whole:
        return " ".join(text.split())[:MAX_CHARS]
    return text.splitlines()[0].strip()


class LLMFatalError(RuntimeError):
    """An error no retry can fix and every further request would repeat (bad key, no such
    model or URL, nothing listening). The run stops instead of failing every job."""
