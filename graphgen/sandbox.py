"""Run untrusted Python programs (model-written code) outside graphgen's process, safely.

    with Sandbox() as box:                      # a pool of warm, isolated workers
        r = box.run("print(6 * 7)")             # -> SandboxResult(reason="ok", stdout="42\\n", ...)
        results = box.map(programs)             # in parallel over the workers, order kept

    run_program("print(1)")                     # one-off: starts a pool of one, runs, stops it

Every program runs in a separate `python -I` interpreter (isolated mode: no PYTHON* variables,
no user site, no script directory on sys.path), forked fresh from a warm worker, with:
- no inherited environment (the API key and NEO4J_PASSWORD are never visible to it);
- its own empty temporary directory as the working directory, deleted afterwards;
- limits: CPU seconds, address space (memory), file size, process count, open files,
  a wall-clock timeout (default 5 s) and a cap on captured output (default 64 KiB);
- a seccomp filter (x86_64, aarch64): no new user namespaces (and, when not started as root,
  bubblewrap's --disable-userns where bwrap >= 0.8);
- where the host allows it (a writable cgroup-v1 memory controller, e.g. as root), a memory
  budget the program, all its children and its /tmp files share (graphgen.sandbox_cgroup);
  elsewhere memory is limited per process only, and `Sandbox.describe()` says which;
- with bubblewrap (`bwrap`, Debian package `bubblewrap`): new network, pid, ipc, uts and
  cgroup namespaces (no network at all, not even the host's loopback; no other process
  visible), a filesystem view of only graphgen's own interpreter environment (venv and
  site-packages: the libraries the prompt names) and system libraries, read-only, plus a
  private /tmp; the sandbox dies with its parent.
- started as root: programs run as an unprivileged uid of their own (one per worker), so
  the process-count limit binds (the kernel does not apply RLIMIT_NPROC to root) and the
  program cannot signal or trace the worker.
Without bubblewrap ("process" isolation) the environment, directory, limits, uid drop (as
root) and cleanup still apply, but the program shares the host's network and can read any
file its uid can read. README "graphgen solve" says what each mode protects.

Each result carries a reason: ok, crash, timeout, no_output, over_limit (and a detail).
Warm workers make a program cost a fork, not an interpreter start; a worker that dies
(a program killed it, or it hung) is replaced and the program is recorded as a crash.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import platform
import queue
import shutil
import struct
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from graphgen.sandbox_cgroup import ProgramCgroup

__all__ = ["SandboxLimits", "SandboxResult", "Sandbox", "SandboxError", "run_program", "bwrap_path", "Reason"]


class SandboxError(RuntimeError):
    """The sandbox itself could not start or could not set a program up (no user namespaces,
    a missing capability): never a program's verdict, never recorded; the run stops with
    this one line."""

Reason = Literal["ok", "crash", "timeout", "no_output", "over_limit"]

_WORKER_FILE = Path(__file__).with_name("sandbox_worker.py")
# Imported by every worker at start, so a program that uses them pays nothing per run.
DEFAULT_PRELOAD = ("math", "cmath", "fractions", "decimal", "itertools", "functools", "collections",
                   "statistics", "random", "re", "string", "datetime", "heapq", "bisect", "json",
                   "operator", "numbers")
# Imported into a worker the first time a program imports them (then kept warm): the
# standard library and the usual math libraries. Not all preloaded, because a bigger worker
# makes every fork slower (sympy: ~2x); and without bubblewrap, a program running as its own
# uid may not be able to read the interpreter's files (e.g. under /root), so it can only use
# modules the worker imported for it.
_NEVER_WARM = frozenset({"antigravity", "this", "tkinter", "turtle", "turtledemo", "idlelib", "ensurepip",
                         "venv", "webbrowser", "pydoc", "pydoc_data", "lib2to3", "__main__"})
WARM_MODULES = (frozenset(sys.stdlib_module_names) - _NEVER_WARM) | {"sympy", "mpmath", "numpy", "scipy"}
_UID_BASE = 1_800_000_000  # far from any real account


def program_uid(slot: int) -> int:
    """The uid a worker slot's programs run as (started as root): unique per live pool (by
    pid) and slot, so two runs at once never share a process limit or kill each other's."""
    return _UID_BASE + (os.getpid() % 4_194_304) * 256 + slot % 256
_GRACE_S = 5.0  # how long past the program's own timeout the host waits for a worker
# where a bubblewrap worker sees its slot's cgroup.procs (bind-mounted: the only cgroup file there)
_CGROUP_PROCS_IN_BOX = "/run/graphgen/cgroup.procs"


class SandboxLimits(BaseModel):
    timeout_s: float = Field(5.0, gt=0, description="wall-clock limit per program")
    cpu_s: int | None = Field(None, description="CPU-seconds limit; default: the timeout rounded up")
    memory_mb: int = Field(512, gt=0, description="address space a program may add to the interpreter's")
    file_mb: int = Field(16, ge=0, description="largest file a program may write")
    max_procs: int = Field(16, ge=1, description="processes and threads a program may start")
    output_bytes: int = Field(65536, gt=0, description="captured stdout/stderr cap; more is over_limit")
    tmp_mb: int = Field(64, gt=0, description="bubblewrap: size of a worker's private /tmp (RAM-backed), "
                                              "shared by a program and its children; emptied after each program")

    def budget_bytes(self) -> int:
        """The memory a program and all its children may hold together, its /tmp files
        included (a cgroup, where one is available): one process's limit plus a full /tmp."""
        return (self.memory_mb + self.tmp_mb) * 2**20


class SandboxResult(BaseModel):
    reason: Reason
    detail: str = ""
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _is_root() -> bool:
    return os.geteuid() == 0


def _graphgen_python() -> str:
    """graphgen's own interpreter, venv included (not resolved to the base interpreter), so
    programs get the libraries the prompt names (sympy, numpy) from whatever environment
    graphgen is installed in; the sandbox mounts that environment read-only."""
    return os.path.abspath(sys.executable)


def _environment_dirs(python: str) -> set[str]:
    """The directories the interpreter and its libraries live in (venv and base prefix,
    every site-packages), resolved."""
    import site

    dirs = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
            os.path.dirname(os.path.dirname(python)), os.path.dirname(os.path.realpath(python)),
            *(sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix}).values()),
            *site.getsitepackages()}
    return {os.path.realpath(d) for d in dirs if d}


@functools.cache
def _bwrap_can_disable_userns(bwrap: str) -> bool:
    try:
        return "--disable-userns" in subprocess.run([bwrap, "--help"], capture_output=True, text=True,
                                                    timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False


def _bwrap_cmd(bwrap: str, python: str, as_root: bool, tmp_mb: int = 64,
               cgroup_procs: str | None = None) -> list[str]:
    cmd = [bwrap, "--die-with-parent", "--new-session"]
    if as_root:
        # No user namespace: real root with only the two capabilities needed to drop to the
        # program's uid; the program's uid is a real, unprivileged one, so RLIMIT_NPROC binds.
        cmd += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        cmd += ["--unshare-all"]
        if _bwrap_can_disable_userns(bwrap):
            # bubblewrap >= 0.8: no nested user namespace (the seccomp filter each program gets
            # says the same; this holds for whatever the worker itself might run)
            cmd += ["--unshare-user", "--disable-userns"]
    for d in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf"):
        if os.path.exists(f):
            cmd += ["--ro-bind", f, f]
    # the private /tmp first, so an environment that lives under /tmp is mounted on top of it
    # size-limited: /tmp is RAM, and a program with children could otherwise fill it far past
    # its per-file limit (1.7 GB within a 5 s timeout was seen)
    cmd += ["--size", str(tmp_mb * 2**20), "--tmpfs", "/tmp", "--chmod", "1777", "/tmp"]
    seen: set[str] = set()
    for p in sorted(_environment_dirs(python), key=len):
        if os.path.isdir(p) and not p.startswith(("/usr/", "/lib")) and p not in seen:
            if not any(p.startswith(s + "/") for s in seen):
                seen.add(p)
    made: set[str] = set()
    for p in sorted(seen):
        # bwrap would create the parents of a bind with the source's modes (/root is 0700,
        # which the program's uid could not traverse): create them 0755 first.
        parts = Path(p).parts
        for i in range(2, len(parts)):
            anc = str(Path(*parts[:i]))
            if anc not in made and not os.path.ismount(anc):
                made.add(anc)
                cmd += ["--perms", "0755", "--dir", anc]
        cmd += ["--ro-bind", p, p]
    if cgroup_procs:
        # only the slot's own cgroup.procs (root-owned: the program's uid cannot write it), so
        # each program can join its budget before it drops root, and see no other cgroup file
        cmd += ["--bind", cgroup_procs, _CGROUP_PROCS_IN_BOX]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LC_ALL", "C.UTF-8"]
    return cmd


def _user_process_count() -> int:
    uid = os.getuid()
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def _warm_list(code: str) -> list[str]:
    """Allow-listed modules a program imports, dotted names included (none if it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, SystemError, RecursionError, MemoryError):
        # SystemError: CPython's parser can raise it under thread load (gh-106905); a program
        # that cannot be parsed here simply gets no modules warmed
        return []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names if a.name != "*")
    return sorted(n for n in names if n.split(".")[0] in WARM_MODULES)


class _Worker:
    def __init__(self, slot: int, isolation: str, preload: tuple[str, ...], startup_timeout: float,
                 tmp_mb: int = 64, cgroup: ProgramCgroup | None = None):
        self.slot = slot
        self.isolation = isolation
        python = _graphgen_python()
        as_root = _is_root()
        pidns = isolation == "bwrap"
        config = {
            "uid": program_uid(slot) if as_root else None,
            "pidns": pidns,
            "work_root": "/tmp" if pidns else None,
            # Not root: RLIMIT_NPROC counts every process of the user, so allow what it has.
            "nproc_base": 0 if as_root else _user_process_count() + 64,
            "preload": list(preload),
            "cgroup_procs": (_CGROUP_PROCS_IN_BOX if pidns else cgroup.procs_file) if cgroup else None,
        }
        self.cgroup = cgroup
        if not pidns:
            config["work_root"] = os.path.join(os.path.realpath(os.environ.get("TMPDIR", "/tmp")),
                                               f"graphgen-sandbox-{os.getpid()}-{slot}-{os.urandom(4).hex()}")
            os.makedirs(config["work_root"], mode=0o1777 if as_root else 0o700, exist_ok=True)
            os.chmod(config["work_root"], 0o1777 if as_root else 0o700)
        self.work_root = None if pidns else config["work_root"]
        argv = [python, "-I", "-c", _WORKER_FILE.read_text(encoding="utf-8"), json.dumps(config)]
        if pidns:
            argv = _bwrap_cmd(bwrap_path() or "bwrap", python, as_root, tmp_mb,
                              cgroup.procs_file if cgroup else None) + argv
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd="/", close_fds=True,
                                     start_new_session=True)
        self._stderr_tail = b""
        drain = threading.Thread(target=self._drain_stderr, daemon=True)
        drain.start()
        hello = self._read(startup_timeout)
        if not hello or not hello.get("ready"):
            # a worker that could not start has exited: wait for its last words (under load
            # the drain thread may not have read them yet)
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            drain.join(timeout=2)
            tail = self._stderr_tail.decode("utf-8", "replace").strip()[-300:]
            self.kill()
            raise SandboxError(f"sandbox worker ({isolation}) did not start: {tail or 'no reply'}")

    def stderr_tail(self) -> str:
        return self._stderr_tail.decode("utf-8", "replace").strip()[-300:]

    def _drain_stderr(self) -> None:
        try:
            for line in self.proc.stderr:
                self._stderr_tail = (self._stderr_tail + line)[-2000:]
        except (OSError, ValueError):
            pass

    def _read(self, timeout: float) -> dict | None:
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = bytearray()
        need = 4
        length = None
        import select

        while len(buf) < need:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, need - len(buf))
            if not chunk:
                return None
            buf += chunk
            if length is None and len(buf) >= 4:
                (length,) = struct.unpack(">I", bytes(buf[:4]))
                need = 4 + length
        return json.loads(bytes(buf[4:]))

    def request(self, req: dict, timeout: float) -> dict | None:
        data = json.dumps(req).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return None
        return self._read(timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except OSError:
                self.proc.kill()
            self.proc.wait()
        if self.cgroup is not None:
            # whatever a program left that escaped the worker's own cleanup (process mode: a
            # daemon that moved to a session of its own) is still in the slot's cgroup
            self.cgroup.kill_all()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass
        if self.work_root:
            shutil.rmtree(self.work_root, ignore_errors=True)


class Sandbox:
    """A pool of warm sandbox workers. Thread-safe: `run` blocks until a worker is free.

    isolation: "auto" or "bwrap" (bubblewrap, else SandboxError: never a silent fallback),
    or "process" (chosen knowingly). A program the sandbox cannot set up raises SandboxError.
    """

    def __init__(self, workers: int | None = None, limits: SandboxLimits | None = None,
                 isolation: Literal["auto", "bwrap", "process"] = "auto",
                 preload: Iterable[str] = DEFAULT_PRELOAD, startup_timeout: float = 30.0):
        self.limits = limits or SandboxLimits()
        self.size = max(1, workers or os.cpu_count() or 1)
        self.preload = tuple(preload)
        self.startup_timeout = startup_timeout
        self._idle: queue.Queue[int] = queue.Queue()
        self._workers: list[_Worker | None] = [None] * self.size
        # one memory cgroup per slot where this host allows it (graphgen.sandbox_cgroup); the
        # first slot's attempt decides for the pool, so the summary names one budget
        self._cgroups: list[ProgramCgroup | None] = [None] * self.size
        self._cgroups_tried = False
        self.cgroups = False
        self._lock = threading.Lock()
        self._closed = False
        # bubblewrap's --die-with-parent fires when the *thread* that started it exits, so
        # every worker is started from this one long-lived thread.
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="sandbox-spawn")
        self._cgroup(0)
        try:
            self.isolation = self._choose(isolation)
        except SandboxError:
            self.close()
            raise
        self.restarts = 0
        for slot in range(self.size):
            self._idle.put(slot)

    def _choose(self, isolation: str) -> str:
        """Fails closed: "auto" is bubblewrap or an error, never a silent downgrade to process
        isolation (which lets a program read the user's files)."""
        if isolation == "process":
            return "process"
        how = ("install bubblewrap and allow unprivileged user namespaces (or run with "
               "CAP_SYS_ADMIN), or pass --isolation process to run programs without it knowingly "
               "(they can then read any file this user can)")
        if not bwrap_path():
            raise SandboxError(f"bubblewrap (bwrap) is not installed: {how}")
        try:
            self._workers[0] = self._spawn(0, "bwrap")
        except SandboxError as exc:
            raise SandboxError(f"bubblewrap cannot start here ({str(exc).split(': ', 1)[-1][:200]}): {how}") from None
        return "bwrap"

    def _worker(self, slot: int) -> _Worker:
        w = self._workers[slot]
        if w is None or not w.alive():
            if w is not None:
                w.kill()
                self.restarts += 1
            w = self._workers[slot] = self._spawn(slot, self.isolation)
        return w

    def _spawn(self, slot: int, isolation: str) -> _Worker:
        return self._spawner.submit(_Worker, slot, isolation, self.preload, self.startup_timeout,
                                    self.limits.tmp_mb, self._cgroup(slot)).result()

    def _cgroup(self, slot: int) -> ProgramCgroup | None:
        if self._cgroups[slot] is None and (self.cgroups or not self._cgroups_tried):
            self._cgroups[slot] = ProgramCgroup.create(slot, self.limits.budget_bytes())
            if not self._cgroups_tried:
                self._cgroups_tried, self.cgroups = True, self._cgroups[slot] is not None
            elif self._cgroups[slot] is None:
                raise SandboxError("could not create the memory cgroup for a sandbox worker")
        return self._cgroups[slot]

    def describe(self) -> str:
        """The limits that bind each program (which memory limit: a cgroup's or per process), for summaries."""
        lim = self.limits
        if self.cgroups:
            mem = f"memory {lim.budget_bytes() // 2**20} MB per program and its children (cgroup)"
        else:
            mem = f"memory {lim.memory_mb} MB per process (no cgroup here)"
        tmp = f", /tmp {lim.tmp_mb} MB" if self.isolation == "bwrap" else ""
        # the machines sandbox_worker._SECCOMP_ARCH has a filter for
        userns = ", no new user namespaces (seccomp)" if platform.machine() in ("x86_64", "aarch64") else ""
        return f"{mem}{tmp}, {lim.max_procs} processes{userns}"

    def run(self, code: str, limits: SandboxLimits | None = None) -> SandboxResult:
        if self._closed:
            raise RuntimeError("sandbox is closed")
        lim = limits or self.limits
        req: dict = {
            "code": code,
            "warm": _warm_list(code),
            "timeout_s": lim.timeout_s,
            "cpu_s": lim.cpu_s or max(1, int(lim.timeout_s + 0.999)),
            "memory_mb": lim.memory_mb,
            "file_mb": lim.file_mb,
            "max_procs": lim.max_procs,
            "output_bytes": lim.output_bytes,
        }
        slot = self._idle.get()
        try:
            worker = self._worker(slot)
            cg = worker.cgroup
            if cg is not None and cg.limit_bytes != lim.budget_bytes():
                cg.set_limit(lim.budget_bytes())
            ooms = cg.oom_kills() if cg is not None else 0
            res = worker.request(req, lim.timeout_s + _GRACE_S)
            if res is None:
                # The worker died or hung (a program may have killed it): replace it.
                alive = worker.alive()
                worker.kill()
                why = "did not answer in time" if alive else f"exited ({worker.proc.returncode})"
                tail = worker.stderr_tail()
                return SandboxResult(reason="crash", detail=f"sandbox worker {why} while running the program"
                                     + (f": {tail}" if tail else ""))
            if res.get("reason") == "sandbox_error":
                raise SandboxError(f"the sandbox ({self.isolation}) could not set a program up: {res.get('detail')}")
            result = SandboxResult.model_validate(res)
            if cg is not None and not result.ok and cg.oom_kills() > ooms:
                # the kernel killed a process of the program at the cgroup's limit
                result.reason = "over_limit"
                result.detail = (f"memory budget {cg.limit_bytes // 2**20} MB for the program and its "
                                 f"children, /tmp included ({result.detail})")
            return result
        finally:
            self._idle.put(slot)

    def map(self, codes: Iterable[str], limits: SandboxLimits | None = None) -> list[SandboxResult]:
        """Run many programs in parallel over the workers; results in input order."""
        with ThreadPoolExecutor(self.size, thread_name_prefix="sandbox") as ex:
            return list(ex.map(lambda c: self.run(c, limits), codes))

    def close(self) -> None:
        self._closed = True
        for w in self._workers:
            if w is not None:
                w.kill()
        for cg in self._cgroups:
            if cg is not None:
                cg.remove()
        self._cgroups = [None] * self.size
        self._spawner.shutdown(wait=False)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def run_program(code: str, limits: SandboxLimits | None = None,
                isolation: Literal["auto", "bwrap", "process"] = "auto") -> SandboxResult:
    """Run one program in a fresh one-worker sandbox (prefer a shared `Sandbox` for many)."""
    with Sandbox(workers=1, limits=limits, isolation=isolation, preload=()) as box:
        return box.run(code)
