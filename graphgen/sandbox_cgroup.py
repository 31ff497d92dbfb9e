"""A memory budget per sandbox program that covers its children and its /tmp: one memory
cgroup per worker slot, which each program joins before it drops privileges and runs.

Every process a program starts is born in the cgroup, and tmpfs pages (its /tmp under
bubblewrap) are charged to the cgroup of the process that wrote them, so the limit binds a
program, its children and its files together; `RLIMIT_AS` alone is per process (one program
held 4.1 GB across 10 children). At the limit the kernel's OOM killer stops a process of the
program (recorded as over_limit) and nothing outside the cgroup.

Where it exists: cgroup v1's memory controller, as a child of graphgen's own memory cgroup,
when this process may create one there (root, or a delegated subtree). Under cgroup v2 a
process cannot give limited children to the cgroup it is itself in (the no-internal-process
rule) without systemd delegation, so graphgen does not try; there, and wherever the
directory is not writable, `ProgramCgroup.create` returns None and the sandbox says the
memory limit is per process only. The process-count limit does not need a cgroup: programs
run as an unprivileged uid (as root) or in a user namespace, where RLIMIT_NPROC binds.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["ProgramCgroup", "memory_cgroup_dir"]

_PREFIX = "graphgen-"


def memory_cgroup_dir() -> Path | None:
    """This process's own cgroup-v1 memory directory, if the memory controller is mounted."""
    try:
        own = next(line.split(":", 2)[2].strip() for line in Path("/proc/self/cgroup").read_text().splitlines()
                   if "memory" in line.split(":", 2)[1].split(","))
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields, _, tail = line.partition(" - ")
            fstype, _, opts = (tail.split() + ["", "", ""])[:3]
            parts = fields.split()
            if fstype == "cgroup" and "memory" in opts.split(","):
                root, mount = parts[3], parts[4]
                rel = own[len(root):] if root != "/" and own.startswith(root) else own
                path = Path(mount + rel)
                return path if (path / "memory.limit_in_bytes").exists() else None
    except (OSError, StopIteration, IndexError):
        pass
    return None


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] != b"Z"


class ProgramCgroup:
    """One worker slot's memory cgroup (cgroup v1). Programs join it by writing "0" to
    `procs_file` (the child does so before it drops root); only one program runs in it at a
    time, and the cgroup is removed when the pool closes."""

    def __init__(self, path: Path, limit_bytes: int):
        self.path = path
        self.limit_bytes = limit_bytes

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    @classmethod
    def create(cls, slot: int, limit_bytes: int) -> ProgramCgroup | None:
        parent = memory_cgroup_dir()
        if parent is None:
            return None
        _sweep_stale(parent)
        path = parent / f"{_PREFIX}{os.getpid()}-{slot}-{uuid.uuid4().hex[:8]}"
        try:
            path.mkdir()
        except OSError:
            return None
        cg = cls(path, 2**62)
        try:
            # memory+swap too, where swap is accounted: swap must not extend the budget
            cg.set_limit(limit_bytes)
        except OSError:
            _rmdir(path)
            return None
        return cg

    def set_limit(self, limit_bytes: int) -> None:
        # memory+swap may never be below the memory limit: it goes last when lowering, first when raising
        files = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        if limit_bytes > self.limit_bytes:
            files.reverse()
        for name in files:
            if (self.path / name).exists():
                (self.path / name).write_text(str(limit_bytes))
        self.limit_bytes = limit_bytes

    def oom_kills(self) -> int:
        """Processes the kernel killed for this cgroup's limit so far."""
        try:
            for line in (self.path / "memory.oom_control").read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def pids(self) -> list[int]:
        """Processes in the cgroup that still run (a zombie waits only for its parent)."""
        try:
            listed = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []
        return [pid for pid in listed if _running(pid)]

    def kill_all(self, rounds: int = 50) -> bool:
        """SIGKILL every process in the cgroup (what a program left, wherever it moved in the
        process tree); True when none is left. Bounded: a program forking during the sweep
        is limited by its process count."""
        import time

        for _ in range(rounds):
            pids = self.pids()
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            time.sleep(0.01)
        return not self.pids()

    def remove(self) -> None:
        self.kill_all()
        _rmdir(self.path)


def _rmdir(path: Path) -> None:
    # a cgroup directory goes with rmdir once its processes are gone (its files are virtual)
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            import time

            time.sleep(0.01)


def _sweep_stale(parent: Path) -> None:
    """Remove the cgroups of graphgen runs that were killed before they could (their pid is
    gone), killing what is still in them: only programs ever join these cgroups, so whatever
    remains is a program's leftover whose worker was killed too."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not name.startswith(_PREFIX):
            continue
        try:
            pid = int(name[len(_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _running(pid):
            if ProgramCgroup(entry, 0).kill_all():
                _rmdir(entry)  # (retried: a killed process leaves the cgroup when it is reaped)
