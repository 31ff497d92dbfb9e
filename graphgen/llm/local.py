"""Local models: graphgen starts and stops llama.cpp's server itself for a GGUF file.

    with LocalServer("model.gguf") as server:      # or serve_local(settings) for a whole run
        settings.llm.base_url = server.url          # an OpenAI-compatible endpoint, .../v1

The server is the prebuilt `xllamacpp` wheel (`pip install 'graphgen[local]'`: nothing to
compile), run in a child process (`graphgen.llm.local_server`) so that graphgen's event loop
and llama.cpp's threads never share a GIL, and so a crash or kill of either leaves no
orphan: the child exits when its standard input closes. It uses the chat template stored in
the GGUF file; structured output (json_schema) is enforced by llama.cpp's grammar.

Threads, slots and context are chosen for the machine (`local_layout`): on a CPU every
thread that waits for a busy core stalls the others (measured on the project's 2-core
machine under load: 1 thread 10-11 tokens/s, 2 threads 1 token/s), so graphgen uses the
cores that are idle but one (left to graphgen itself), at least 1, at most 8; two slots let llama.cpp batch two requests per
decoding step; 4096 tokens of context per slot. `[llm] local_threads`, `local_slots` and
`local_ctx` override each choice.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from graphgen.errors import LLMFatalError

__all__ = ["LocalServer", "LocalServerError", "LocalLayout", "local_layout", "serve_local", "shared_server", "is_gguf_path"]

log = logging.getLogger("graphgen.llm")

_START_TIMEOUT = 300.0


class LocalServerError(LLMFatalError):
    """The local model could not be served; the message says what to do."""


def is_gguf_path(model: str | os.PathLike | None) -> bool:
    return model is not None and str(model).lower().endswith(".gguf")


@dataclass(frozen=True)
class LocalLayout:
    threads: int
    slots: int
    ctx: int
    """context tokens per slot"""

    def describe(self) -> str:
        return f"{self.threads} thread{'s' if self.threads != 1 else ''}, {self.slots} slots, {self.ctx} context tokens per slot"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS)
        return os.cpu_count() or 1


def local_layout(threads: int | None = None, slots: int | None = None, ctx: int | None = None,
                 *, cores: int | None = None, load: float | None = None) -> LocalLayout:
    """Threads = the cores left idle by the current load, but one (1..8); 2 slots; 4096 tokens each."""
    cores = cores or _cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # pragma: no cover
            load = 0.0
    idle = int(cores - load + 0.5) - 1  # one core stays with graphgen (client, sandbox)
    return LocalLayout(threads=threads or max(1, min(8, idle)), slots=slots or 2, ctx=ctx or 4096)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """llama.cpp serving one GGUF file on 127.0.0.1, for as long as the `with` block."""

    def __init__(self, model: str | os.PathLike, layout: LocalLayout | None = None, *,
                 log_path: str | os.PathLike | None = None):
        self.model = Path(model).expanduser()
        self.layout = layout or local_layout()
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"graphgen-llama-{os.getpid()}.log"
        self.url = ""
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "LocalServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def name(self) -> str:
        """The model name sent to the server and recorded on every row: the file's stem."""
        return self.model.stem

    def start(self) -> str:
        if not self.model.is_file():
            raise LocalServerError(f"{self.model}: no such GGUF file; give the path of a .gguf model "
                                   "(--model ./model.gguf or [llm] local_model)")
        try:
            import xllamacpp  # noqa: F401
        except ImportError:
            raise LocalServerError("local models need xllamacpp: python -m pip install 'graphgen[local]'") from None
        with self.model.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise LocalServerError(f"{self.model}: not a GGUF file (it does not start with 'GGUF'); "
                                       "give a llama.cpp model file")
        port = _free_port()
        lay = self.layout
        cmd = [sys.executable, "-m", "graphgen.llm.local_server", str(self.model), "--port", str(port),
               "--slots", str(lay.slots), "--threads", str(lay.threads), "--ctx", str(lay.ctx)]
        logf = self.log_path.open("ab")
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logf, env=env,
                                     start_new_session=True)
        logf.close()
        line = self._first_line(_START_TIMEOUT)
        if not line.startswith("listening "):
            self.stop()
            why = line[len("error: "):] if line.startswith("error: ") else (line or "it exited without a word")
            raise LocalServerError(f"llama.cpp could not serve {self.model.name}: {why} (log: {self.log_path})")
        self.url = line.split(None, 1)[1].strip().rstrip("/") + "/v1"
        log.warning("serving %s with llama.cpp at %s (%s; log %s)", self.model.name, self.url,
                    lay.describe(), self.log_path)
        return self.url

    def _first_line(self, timeout: float) -> str:
        out: list[str] = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline().decode(errors="replace")),
                             daemon=True)
        t.start()
        t.join(timeout)
        return out[0].strip() if out else ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()  # the child's signal to exit
        except OSError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout,):
            if stream:
                stream.close()


_servers: dict[tuple, LocalServer] = {}


def shared_server(llm) -> LocalServer:
    """The one server of this process for `llm.local_model` (and its layout), started on
    first use and stopped when the process exits (the child also exits on its own when
    this process dies: its standard input closes)."""
    lay = local_layout(llm.local_threads, llm.local_slots, llm.local_ctx)
    key = (str(Path(llm.local_model).expanduser().resolve()), lay.threads if llm.local_threads else None,
           lay.slots, lay.ctx)
    server = _servers.get(key)
    if server is None or server.proc is None or server.proc.poll() is not None:
        server = LocalServer(llm.local_model, lay)
        server.start()
        _servers[key] = server
        if len(_servers) == 1:
            atexit.register(stop_all)
    return server


def stop_all() -> None:
    while _servers:
        _servers.popitem()[1].stop()


@contextmanager
def serve_local(llm):
    """`with serve_local(settings.llm) as url:` the local model served for the block (None
    when `llm.local_model` is not set). For scripts that want the server's lifetime explicit;
    stages just build an LLMClient, which starts it on demand."""
    if llm.local_model is None:
        yield None
        return
    server = LocalServer(llm.local_model, local_layout(llm.local_threads, llm.local_slots, llm.local_ctx))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
