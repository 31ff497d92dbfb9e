"""Options and plumbing shared by the commands: settings, store, LLM client, errors."""

from __future__ import annotations

import functools
import json
import logging
import re
import signal
import sqlite3
import sys
from typing import Any

import click
from pydantic import ValidationError

from graphgen.config import Settings, load_settings
from graphgen.errors import one_line
from graphgen.scrub import ScrubFilter
from graphgen.store import GraphStore, StoreError, open_store
from graphgen.store.base import storage_hint


def store_options(f):
    """--db / --store / --neo4j-*: where the concept graph lives."""
    for decorator in reversed([
        click.option("--db", type=click.Path(dir_okay=False), help="SQLite workspace file [default: ./graphgen.db; env GRAPHGEN_DB]"),
        click.option("--store", "store_kind", type=click.Choice(["sqlite", "neo4j"]), help="graph store [default: sqlite; env GRAPHGEN_STORE; neo4j when NEO4J_URI is set]"),
        click.option("--neo4j-uri", help="e.g. bolt://localhost:7687 [env NEO4J_URI]"),
        click.option("--neo4j-user", help="[env NEO4J_USERNAME, default neo4j]"),
        click.option("--neo4j-database", help="[env NEO4J_DATABASE] (password: env NEO4J_PASSWORD only)"),
    ]):
        f = decorator(f)
    return f


def llm_options(f):
    """Endpoint, model and limits for commands that call an LLM."""
    for decorator in reversed([
        click.option("--base-url", help="OpenAI-compatible endpoint [env OPENAI_BASE_URL] (key: env OPENAI_API_KEY)"),
        click.option("--model", help="model name, or a GGUF file that graphgen serves with llama.cpp for the run (needs graphgen[local]) [env GRAPHGEN_MODEL; default gpt-4o-mini]"),
        click.option("--concurrency", type=int, help="requests in flight [env GRAPHGEN_CONCURRENCY; default 16]"),
        click.option("--rpm", type=int, help="requests per minute limit [env GRAPHGEN_RPM]"),
        click.option("--tpm", type=int, help="tokens per minute limit [env GRAPHGEN_TPM]"),
        click.option("--temperature", type=float, help="sampling temperature"),
        click.option("--max-tokens", type=int, help="completion token limit per call"),
        click.option("--timeout", type=float, help="seconds per request [default 120]"),
        click.option("--max-retries", type=int, help="transport retries per request (429, 5xx, timeouts) [env GRAPHGEN_MAX_RETRIES; default 6]"),
        click.option("--max-reasks", type=int, help="re-asks after an invalid or truncated reply [env GRAPHGEN_MAX_REASKS; default 2]"),
        click.option("--job-timeout", help="seconds one job may take over all retries and re-asks, or 'off' [env GRAPHGEN_JOB_TIMEOUT; default 600]"),
        click.option("--job-tokens", help="tokens one job may spend over all attempts, or 'off' [env GRAPHGEN_JOB_TOKENS; default 16000]"),
        click.option("--structured-output", type=click.Choice(["json_schema", "json_object", "text"]), help="how to ask for JSON [env GRAPHGEN_STRUCTURED_OUTPUT; default json_schema, falls back automatically]"),
        click.option("--json-object-schema", type=click.Choice(["auto", "none", "llama.cpp", "vllm", "ollama"]), help="how a json_object-mode server takes the schema [env GRAPHGEN_JSON_OBJECT_SCHEMA; default auto]"),
        click.option("--cache", "cache_path", help="response cache file, or 'off' [default ./graphgen-cache.db; env GRAPHGEN_CACHE]"),
        click.option("--quiet", is_flag=True, help="no progress bar"),
    ]):
        f = decorator(f)
    return f


def judge_options(gate: str):
    """--judge MODE / --judge-model: the model judge behind this command's rule gate ([judge] <gate>)."""
    def wrap(f):
        for decorator in reversed([
            click.option("--judge", "judge_mode", type=click.Choice(["off", "fallback", "always"]),
                         help=f"model judge behind the rule: off, fallback (only where the rule says no or cannot "
                              f"decide) or always [settings: [judge] {gate}; default off]"),
            click.option("--judge-model", help="judge model on the same endpoint [env GRAPHGEN_JUDGE_MODEL; default: --model]"),
        ]):
            f = decorator(f)
        return f
    return wrap


def include_failed_check_option(f):
    """--include-failed-check: also the rows `graphgen check` failed ([check] skip_failed = false)."""
    return click.option("--include-failed-check", is_flag=True, default=None,
                        help="also rows whose question failed `graphgen check` (skipped by default) "
                             "[settings: [check] skip_failed]")(f)


def judge_section(gate: str, judge_mode: str | None, judge_model: str | None) -> dict[str, Any]:
    """The `judge` settings section the --judge / --judge-model flags ask for."""
    return {"judge": {gate: judge_mode, "model": judge_model}}


def engine_options(f):
    """--ray [ADDRESS] / --batch: where the LLM jobs run (default: this process)."""
    for decorator in reversed([
        click.option("--ray", "ray_address", is_flag=False, flag_value="auto", default=None, metavar="[ADDRESS]",
                     help="run the LLM calls as Ray tasks on a cluster: --ray (the cluster this node belongs to, "
                          "or RAY_ADDRESS), --ray HOST:PORT, --ray local [settings: engine = \"ray\"]"),
        click.option("--batch", is_flag=True, help="send the requests through the provider's Batch API "
                     "(about half the price, results within 24 h); rerun the same command to resume"),
    ]):
        f = decorator(f)
    return f


def settings_from(ctx: click.Context, sections: dict[str, dict[str, Any]] | None = None, **opts: Any) -> Settings:
    """Settings from the config file and environment, overridden by the flags given:
    `opts` holds the store/LLM flags, `sections` the stage flags (e.g. {"sample": {...}});
    flags left unset (None) change nothing."""
    llm = {k: opts.get(k) for k in ("base_url", "model", "concurrency", "rpm", "tpm", "temperature",
                                     "max_tokens", "timeout", "max_retries", "max_reasks", "job_timeout",
                                     "job_tokens", "structured_output", "json_object_schema", "cache_path")}
    store = {
        "path": opts.get("db"), "kind": opts.get("store_kind"), "neo4j_uri": opts.get("neo4j_uri"),
        "neo4j_username": opts.get("neo4j_user"), "neo4j_database": opts.get("neo4j_database"),
    }
    engine: dict[str, Any] = {}
    if opts.get("ray_address") and opts.get("batch"):
        raise click.UsageError("--ray and --batch are two different engines: choose one")
    if opts.get("ray_address"):
        engine = {"kind": "ray", "ray_address": opts["ray_address"]}
    elif opts.get("batch"):
        engine = {"kind": "batch"}
    try:
        return load_settings(ctx.obj.get("config"), overrides={"llm": llm, "store": store, "engine": engine, **(sections or {})})
    except ValidationError as exc:  # name the setting, not the model
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise click.ClickException(f"setting {where}: {err['msg']}") from None
    except ValueError as exc:
        raise click.ClickException(one_line(exc)) from None


def open_graph_store(settings: Settings, *, create: bool = False) -> GraphStore:
    """The workspace's store. Commands that only read it refuse a missing SQLite workspace
    (a mistyped --db would otherwise create an empty one and report an empty graph)."""
    if not create and settings.store.kind != "neo4j" and not settings.store.path.exists():
        raise click.ClickException(
            f"{settings.store.path}: no such workspace; run `graphgen extract` first, or pass the "
            "--db of your workspace (env GRAPHGEN_DB)")
    try:
        return open_store(settings.store)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


_terminated = False


def _on_sigterm(signum, frame) -> None:
    """SIGTERM (kill, systemd, a batch scheduler) ends the run like Ctrl-C: through SIGINT's
    handler (asyncio's, which cancels the run so progress prints its last line) or, when
    SIGINT is ignored (background jobs), by raising KeyboardInterrupt here."""
    global _terminated
    _terminated = True
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        raise KeyboardInterrupt
    signal.raise_signal(signal.SIGINT)


#: the user-fixable errors friendly_errors turns into one line: (module, class)
_KNOWN_ERRORS = (("graphgen.readers.seeds", "SeedInputError"), ("graphgen.stages.extract", "AnnotationError"),
                 ("graphgen.store.base", "StoreError"), ("graphgen.errors", "LLMFatalError"),
                 ("graphgen.embed", "EmbeddingError"), ("graphgen.stage", "StageError"),
                 ("graphgen.engine", "EngineError"), ("graphgen.rows", "OutputBusyError"),
                 ("graphgen.sandbox", "SandboxError"))


def _known_errors() -> tuple[type[Exception], ...]:
    """The classes of `_KNOWN_ERRORS` whose modules are loaded: an error can only have been
    raised from a module that was imported, so a command (filter) does not import the
    embedder, the sandbox or extract just to be able to name their errors."""
    return tuple(getattr(module, name) for module_name, name in _KNOWN_ERRORS
                 if (module := sys.modules.get(module_name)) is not None)


def friendly_errors(f):
    """Known, user-fixable errors become one line on stderr and exit code 1; Ctrl-C and
    SIGTERM say how to resume."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread (an embedding host): leave signals alone
            pass
        try:
            return f(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, _known_errors()):
                raise click.ClickException(one_line(exc)) from None
            if not isinstance(exc, (OSError, sqlite3.Error)):
                raise
            hint = storage_hint(exc)
            where = getattr(exc, "filename", None)
            if hint is None and not (isinstance(exc, OSError) and where):
                raise
            if where:  # name the file the user gave, not the temp file an atomic write used
                where = re.sub(r"(^|/)\.([^/]+)\.tmp-\d+$", r"\1\2", str(where))
            else:
                where = "a SQLite file (the workspace --db or the cache --cache)"
            what = getattr(exc, "strerror", None) or one_line(exc)
            raise click.ClickException(f"{where}: {what}; {hint or 'check the path (its directory must exist and be writable)'}") from None
        except KeyboardInterrupt:
            what = "terminated (SIGTERM)" if _terminated else "interrupted"
            click.echo(f"\n{what}: finished work is saved; run the same command again to resume", err=True)
            sys.exit(143 if _terminated else 130)

    return wrapper


def echo_report(report, as_json: bool = False) -> None:
    """A stage report as the user sees it: its lines (or its JSON) on stdout, its warnings on stderr."""
    if as_json:
        echo_json(report.to_json())
    else:
        for line in report.lines():
            click.echo(line)
    for line in report.warnings:
        click.echo(line, err=True)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (the CLI run in-process by a host or a
    test runner swaps it per call)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging() -> None:
    """graphgen's warnings (a response format the server refused, ...) as one scrubbed
    line each on stderr."""
    logger = logging.getLogger("graphgen")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("graphgen: %(message)s"))
        handler.addFilter(ScrubFilter())
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
