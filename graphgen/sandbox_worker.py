"""The warm sandbox worker ("zygote"): runs inside `python -I` (inside bubblewrap when present)
and forks one fresh child per program. Started only by graphgen.sandbox; it imports nothing
from graphgen, because the sandbox cannot see graphgen's files.

Protocol on fds 0/1 (moved to private fds at start): 4-byte big-endian length + JSON.
  request  {"code", "stdin", "timeout_s", "cpu_s", "memory_mb", "file_mb", "max_procs",
            "output_bytes"}
  response {"reason", "exit_code", "signal", "stdout", "stderr", "detail", "elapsed_s"}
The first message from the worker is {"ready": true, "isolation": ...}.

Why a fork per program is safe to reuse: the child is a copy of a process that never ran
untrusted code; it gets its own empty directory, rlimits and (when started as root) its own
unprivileged uid; after it ends, every process it left behind is killed and every file it
wrote is deleted before the next program starts. The worker marks itself non-dumpable so a
child of the same uid cannot ptrace it or read its memory.
"""

import ctypes
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback

CONFIG = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
DROP_UID = CONFIG.get("uid")  # int or None: the uid programs run as (worker started as root)
PIDNS = bool(CONFIG.get("pidns"))  # True inside a private pid namespace (bubblewrap)
WORK_ROOT = CONFIG["work_root"]  # a directory of this worker's own: everything in it is wiped
NPROC_BASE = int(CONFIG.get("nproc_base") or 0)  # processes this uid already has (non-root)
CGROUP_PROCS = CONFIG.get("cgroup_procs")  # the slot's memory cgroup, joined by each program; or None

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWNET = 0x40000000
# World-writable places a program could write to when it shares the host's filesystem.
_SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")
_OVER_LIMIT_MARKERS = ("MemoryError", "BlockingIOError: [Errno 11]", "OSError: [Errno 27] File too large",
                       "RecursionError", "[Errno 12] Cannot allocate memory", "[Errno 28] No space left on device")


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _read_msg(fd: int):
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    body = _read_exact(fd, n)
    return None if body is None else json.loads(body)


def _read_exact(fd: int, n: int):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _write_msg(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    os.write(fd, struct.pack(">I", len(data)))
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


_STATUS_FD = 3  # the child's set-up report: "ok", or why the sandbox could not set it up

# seccomp: (audit arch, unshare, clone, clone3) per machine; elsewhere no filter is installed
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 272, 56, 435), "aarch64": (0xC00000B7, 97, 220, 435)}
_CLONE_NEWUSER = 0x10000000


def _seccomp_filter() -> bytes | None:
    """A classic-BPF seccomp program: unshare and clone with CLONE_NEWUSER fail with EPERM,
    clone3 with ENOSYS (its flags are behind a pointer a filter cannot read; libc then falls
    back to clone, which the filter can), syscalls of another ABI (i386, x32) with EPERM;
    everything else is allowed. Why: a user namespace gives a program every capability inside
    it, the way to most kernel attack surface, and programs need none. None: unknown machine."""
    import platform

    arch = _SECCOMP_ARCH.get(platform.machine())
    if arch is None:
        return None
    audit, unshare, clone, clone3 = arch
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ/JGE/JSET|K, BPF_RET|K
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    prog = [
        (ld, 0, 0, 4),                   # 0: arch
        (jeq, 1, 0, audit),              # 1: native -> 3
        (ret, 0, 0, eperm),              # 2: another ABI
        (ld, 0, 0, 0),                   # 3: syscall number
        (jge, 0, 1, 0x40000000),         # 4: x32 numbers on x86_64 -> 5, else 6
        (ret, 0, 0, eperm),              # 5
        (jeq, 0, 1, clone3),             # 6: clone3 -> 7
        (ret, 0, 0, enosys),             # 7
        (jeq, 1, 0, unshare),            # 8: unshare -> 10
        (jeq, 0, 3, clone),              # 9: clone -> 10, else 13
        (ld, 0, 0, 16),                  # 10: flags (low 32 bits of the first argument)
        (jset, 0, 1, _CLONE_NEWUSER),    # 11: CLONE_NEWUSER -> 12
        (ret, 0, 0, eperm),              # 12
        (ret, 0, 0, allow),              # 13
    ]
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


_SECCOMP = _seccomp_filter()


def _install_seccomp(libc) -> None:
    if _SECCOMP is None:
        return
    n = len(_SECCOMP) // 8
    buf = ctypes.create_string_buffer(_SECCOMP, len(_SECCOMP))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(n, ctypes.addressof(buf))
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def _child(req: dict, out_w: int, err_w: int, status_w: int, base_vm: int) -> None:
    """In the forked child: isolate, limit, run the program, exit. Never returns.
    Set-up failures (a missing capability, no namespace) are written to the status pipe,
    which is closed before the program runs, so a program cannot fake one."""
    code = 70
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(status_w, _STATUS_FD)
        os.closerange(_STATUS_FD + 1, 65536)
    except BaseException:
        os._exit(code)
    try:
        if CGROUP_PROCS:
            # Join the slot's memory budget while still root (the file is root's): every process
            # the program starts is born inside it, and so are the pages of its /tmp files.
            with open(CGROUP_PROCS, "w") as fh:
                fh.write("0")
        if DROP_UID is not None and not PIDNS:
            # Root without bubblewrap: still take the network away (a namespace with only a
            # loopback that is down) before giving up root.
            if ctypes.CDLL(None, use_errno=True).unshare(_CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
        if DROP_UID is not None:
            os.setgroups([])
            os.setgid(DROP_UID)
            os.setuid(DROP_UID)
        # no_new_privs: nothing the program executes (a setuid binary) can gain privileges
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        # no new user namespaces, in every mode (bubblewrap's --disable-userns needs a user
        # namespace of its own, which a worker started as root does not have)
        _install_seccomp(libc)
        workdir = tempfile.mkdtemp(prefix="run-", dir=WORK_ROOT)
        # Process mode: the program's own uid only, so no other running program (another worker's
        # uid) can read or write it; the worker is real root there and still removes it. Under
        # bubblewrap each worker has a private /tmp, and the worker (root without
        # CAP_DAC_OVERRIDE) must be able to delete it without a helper.
        os.chmod(workdir, 0o777 if PIDNS else 0o700)
        os.chdir(workdir)
        cpu = int(req["cpu_s"])
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        mem = base_vm + int(req["memory_mb"]) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        fsize = int(req["file_mb"]) * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        nproc = NPROC_BASE + int(req["max_procs"])
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    except BaseException as exc:
        try:
            os.write(_STATUS_FD, f"{type(exc).__name__}: {exc}"[:300].encode())
        finally:
            os._exit(code)
    os.write(_STATUS_FD, b"ok")
    os.close(_STATUS_FD)
    try:
        import io
        import random

        random.seed()
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", line_buffering=False)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", write_through=True)
        sys.argv = ["program.py"]
        import types

        main_mod = types.ModuleType("__main__")  # the program's own globals, not the worker's
        main_mod.__file__ = "program.py"
        sys.modules["__main__"] = main_mod
        glb = main_mod.__dict__
        code = 0
        try:
            exec(compile(req["code"], "program.py", "exec"), glb)
        except SystemExit as exc:
            c = exc.code
            code = c if isinstance(c, int) else (0 if c is None else 1)
            if not isinstance(c, int) and c is not None:
                print(c, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        try:
            sys.stdout.flush()
        except BaseException:
            code = code or 1
    finally:
        os._exit(code)


def _cleanup(child_pgid: int) -> None:
    """Kill whatever the program left running and delete whatever it wrote."""
    if PIDNS and DROP_UID is None:
        # Private pid namespace: every other process in it (except its init) is the program's.
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        _reap()
        _wipe()
        return
    if DROP_UID is not None and PIDNS and not _others_alive() and _wipe():
        return  # nothing left running and every file removed: no helper needed
    if DROP_UID is not None:
        # As the program's own uid (the only uid it had): kill all its processes, remove its files.
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(DROP_UID)
                os.setuid(DROP_UID)
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
                _wipe()
                if not PIDNS:
                    _wipe_owned_shared_tmp()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        _reap()
        _wipe()
        return
    try:  # without namespaces or a spare uid: its process group, then whatever escaped it
        os.killpg(child_pgid, signal.SIGKILL)
    except OSError:
        pass
    _kill_children()
    _reap()
    _wipe()


def _kill_children(rounds: int = 100) -> None:
    """Kill every process below this worker. It is their subreaper, so a program's daemon
    (double fork, own session) becomes its child once its parents die: killing children round
    after round reaches all of them."""
    me = str(os.getpid())
    for _ in range(rounds):
        kids = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat", "rb") as fh:
                        stat = fh.read()
                except OSError:
                    continue
                # the fields after the command name (which may hold spaces or parentheses)
                if stat[stat.rfind(b")") + 2:].split()[1] == me.encode():
                    kids.append(int(name))
        if not kids:
            return
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _reap(0.5)


def _wipe_owned_shared_tmp() -> None:
    """Without a private /tmp: remove what this (dedicated) uid left in world-writable dirs."""
    for d in _SHARED_TMP:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                if e.stat(follow_symlinks=False).st_uid != DROP_UID:
                    continue
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    os.unlink(e.path)
            except OSError:
                pass


def _reap(limit_s: float = 5.0) -> None:
    """Wait for every descendant (the worker is their subreaper) to be gone."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.001)


def _others_alive() -> bool:
    """In a private pid namespace: does any process other than init and this worker remain?"""
    me = os.getpid()
    return any(n.isdigit() and int(n) not in (1, me) for n in os.listdir("/proc"))


def _wipe() -> bool:
    """Remove what programs wrote in the work root; True if everything went."""
    clean = True

    def failed(*_args) -> None:
        nonlocal clean
        clean = False

    try:
        names = os.listdir(WORK_ROOT)
    except OSError:
        return False
    for name in names:
        p = os.path.join(WORK_ROOT, name)
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, onerror=failed)
            else:
                os.unlink(p)
        except OSError:
            clean = False
    return clean


def _classify(status: int, stdout: bytes, stderr: bytes, timed_out: str, over: str) -> tuple[str, str]:
    if timed_out:
        return "timeout", timed_out
    if over:
        return "over_limit", over
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "timeout", "CPU time limit"
        if sig == signal.SIGXFSZ:
            return "over_limit", "file size limit"
        return "crash", f"killed by signal {signal.Signals(sig).name}"
    code = os.WEXITSTATUS(status)
    if code != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        last = tail[0]
        for marker in _OVER_LIMIT_MARKERS:
            if last.startswith(marker) or marker in last:
                return "over_limit", last[:200]
        return "crash", last[:200] or f"exit code {code}"
    if not stdout.strip():
        return "no_output", "the program printed nothing"
    return "ok", ""


def _warm(names) -> None:
    """Import (trusted, allow-listed) library modules a program is about to use into the
    worker, so this and every later program forks with them loaded instead of importing."""
    import gc

    fresh = [n for n in names if n not in sys.modules]
    for name in fresh:
        try:
            __import__(name)
        except Exception:
            pass
    if fresh:
        gc.collect()
        gc.freeze()


def _host_gone(child_pid: int) -> None:
    """graphgen went away (killed -9, say) while a program ran: kill the program and all it
    left, remove its files and the work root, and exit; nothing may outlive the run."""
    for kill in (os.killpg, os.kill):
        try:
            kill(child_pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.waitpid(child_pid, 0)
    except ChildProcessError:
        pass
    _cleanup(child_pid)
    _remove_work_root()
    os._exit(0)


def _remove_work_root() -> None:
    # process mode: the host made it and would remove it, but the host may be gone (under
    # bubblewrap the work root is the private /tmp, which goes with the sandbox)
    if not PIDNS:
        shutil.rmtree(WORK_ROOT, ignore_errors=True)


def _run(req: dict, host_fd: int = -1) -> dict:
    _warm(req.get("warm") or ())
    base_vm = _vm_bytes()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        os.close(status_r)
        _child(req, out_w, err_w, status_w, base_vm)
    os.close(out_w)
    os.close(err_w)
    os.close(status_w)
    cap = int(req["output_bytes"])
    deadline = t0 + float(req["timeout_s"])
    bufs = {out_r: bytearray(), err_r: bytearray()}
    open_fds = {out_r, err_r}
    pidfd = os.pidfd_open(pid)
    status = None
    timed_out = over = ""
    poller = select.poll()
    for fd in open_fds:
        poller.register(fd, select.POLLIN | select.POLLHUP)
    poller.register(pidfd, select.POLLIN)
    if host_fd >= 0:
        poller.register(host_fd, 0)  # no events asked: poll reports only POLLHUP / POLLERR
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = f"wall-clock limit {req['timeout_s']}s"
            break
        for fd, _ev in poller.poll(max(1, int(left * 1000))):
            if fd == host_fd:
                _host_gone(pid)
            if fd == pidfd:
                _, status = os.waitpid(pid, 0)
                poller.unregister(pidfd)
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            buf = bufs[fd]
            room = cap - len(buf)
            buf += chunk[:max(0, room)]
            if len(chunk) > room:
                over = f"output over {cap} bytes"
        if over:
            break
        if status is not None:
            # The program ended; drain what its pipes still hold (a leftover grandchild may
            # keep them open, so do not wait for EOF).
            for fd in list(open_fds):
                while select.select([fd], [], [], 0)[0]:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    room = cap - len(bufs[fd])
                    bufs[fd] += chunk[:max(0, room)]
                    if len(chunk) > room:
                        over = f"output over {cap} bytes"
                        break
            break
    if status is None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        _, status = os.waitpid(pid, 0)
    elapsed = time.monotonic() - t0
    os.close(pidfd)
    for fd in (out_r, err_r):
        os.close(fd)
    _cleanup(pid)
    setup = os.read(status_r, 400)  # the child has ended: whatever it reported is in the pipe
    os.close(status_r)
    stdout, stderr = bytes(bufs[out_r]), bytes(bufs[err_r])
    reason, detail = _classify(status, stdout, stderr, timed_out, over)
    if setup != b"ok":
        # the sandbox could not set the program up: not the program's doing, not a verdict
        reason, detail = "sandbox_error", setup.decode("utf-8", "replace") or "the program's process did not start"
    return {
        "reason": reason,
        "detail": detail,
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "stdout": stdout.decode("utf-8", "replace"),
        "stderr": stderr.decode("utf-8", "replace")[-4000:],
        "elapsed_s": round(elapsed, 4),
    }


def main() -> None:
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        # Orphans of a program become this worker's children, so cleanup can reap them all.
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception:
        pass
    os.makedirs(WORK_ROOT, exist_ok=True)
    # gc.freeze: preloaded objects are never scanned by a child's collector (fewer copied pages)
    _warm(CONFIG.get("preload", []))
    _write_msg(wfd, {"ready": True, "pid": os.getpid(), "uid": os.getuid(), "drop_uid": DROP_UID, "pidns": PIDNS,
                     "seccomp": _SECCOMP is not None})
    while True:
        req = _read_msg(rfd)
        if req is None:  # graphgen closed the pipe or died: nothing is running now
            _remove_work_root()
            return
        try:
            res = _run(req, rfd)
        except Exception as exc:  # the worker itself failed: say so, keep serving
            res = {"reason": "crash", "detail": f"sandbox worker error: {exc!r}", "exit_code": None,
                   "signal": None, "stdout": "", "stderr": "", "elapsed_s": 0.0}
        _write_msg(wfd, res)


if __name__ == "__main__":
    main()
