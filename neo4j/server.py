#!/usr/bin/env python3
"""Build and start graphgen's local Neo4j (Community 5.26, in-process via neo4j-harness).

Used by the test suite (tests/neo4j_fixtures.py) and the benchmark, and by hand:

    python neo4j/server.py                      # build if needed, start on free ports
    python neo4j/server.py --bolt-port 7687 --http-port 7474 --password secret

It prints the Bolt and Browser URLs and runs until Ctrl-C. Requirements: Java 17+ and Maven
(`apt-get install openjdk-17-jdk-headless maven`). The first build downloads Neo4j from Maven
Central into ~/.m2 (about a minute); later builds are skipped unless pom.xml or the Java
source changed. A class-data-sharing archive (target/neo4j-cds.jsa) is written on the first
clean stop and makes later JVM starts faster.

This file is a plain script, not a package: the folder is named `neo4j`, and an
`__init__.py` here would shadow the Neo4j Python driver.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE / "target"
JAR = TARGET / "graphgen-neo4j-test-server-0.1.0.jar"
CLASSPATH_FILE = TARGET / "classpath.txt"
CDS_ARCHIVE = TARGET / "neo4j-cds.jsa"
STAMP = TARGET / ".build-ok"
MAIN_CLASS = "graphgen.Neo4jTestServer"
READY = "GRAPHGEN_NEO4J_READY"


class ServerError(RuntimeError):
    """The launcher could not be built or the server did not come up (message says why)."""


def _sources() -> list[Path]:
    return [HERE / "pom.xml", *sorted((HERE / "src").rglob("*.java"))]


def is_built() -> bool:
    if not (JAR.exists() and CLASSPATH_FILE.exists() and STAMP.exists()):
        return False
    built = STAMP.stat().st_mtime  # Maven leaves unchanged outputs alone: keep our own stamp
    if any(p.stat().st_mtime > built for p in _sources()):
        return False
    return all(Path(p).exists() for p in CLASSPATH_FILE.read_text().strip().split(os.pathsep) if p)


def build(force: bool = False, quiet: bool = True) -> float:
    """`mvn package` unless the jar and classpath file are newer than the sources.

    Returns the seconds spent building (0.0 when the cached build was used). A file lock
    keeps concurrent test sessions from building at the same time.
    """
    TARGET.mkdir(exist_ok=True)
    with open(TARGET / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and is_built():
            return 0.0
        if not shutil.which("java"):
            raise ServerError("java not found: install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)")
        mvn = shutil.which("mvn")
        if not mvn:
            raise ServerError("mvn not found: install Maven (Debian: apt-get install maven) to build neo4j/")
        t0 = time.monotonic()
        cmd = [mvn, "-B", "-f", str(HERE / "pom.xml"), "package"]
        if quiet:
            cmd.insert(2, "-q")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
            raise ServerError(f"building the Neo4j launcher failed ({' '.join(cmd)}):\n{tail}")
        CDS_ARCHIVE.unlink(missing_ok=True)  # classes changed: the archive is stale
        STAMP.touch()
        return time.monotonic() - t0


def free_port(host: str = "127.0.0.1", avoid: set[int] = frozenset()) -> int:
    """A currently free TCP port on loopback (the server binds it a moment later)."""
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port


@dataclass
class RunningServer:
    bolt_uri: str
    http_uri: str
    user: str
    password: str | None
    data_dir: Path
    log_path: Path
    started_in: float
    proc: subprocess.Popen = field(repr=False)
    _owns_dir: bool = field(default=False, repr=False)

    @property
    def browser_url(self) -> str:
        return self.http_uri.rstrip("/") + "/browser/"

    def stop(self, timeout: float = 60.0) -> None:
        """Close stdin (the server's stop signal), then SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    data_dir: str | Path | None = None,
    *,
    password: str | None = "graphgen-test",
    bolt_port: int = 0,
    http_port: int = 0,
    heap: str = "1g",
    page_cache: str = "256m",
    timeout: float = 240.0,
    log_path: str | Path | None = None,
) -> RunningServer:
    """Build if needed, start the server, wait for its ready line and return its URIs.

    The server stops when the returned object's stop() is called or when this process
    exits (it watches its stdin). Raises ServerError with the reason when it cannot start.
    """
    build()
    if not shutil.which("java"):
        raise ServerError("java not found on PATH: install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)")
    bolt_port = bolt_port or free_port()
    http_port = http_port or free_port(avoid={bolt_port})
    owns = data_dir is None
    data = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="graphgen-neo4j-"))
    data.mkdir(parents=True, exist_ok=True)
    log = Path(log_path) if log_path else data / "server.log"
    classpath = os.pathsep.join([str(JAR), CLASSPATH_FILE.read_text().strip()])
    jvm = [f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseParallelGC", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    # Class-data sharing: dump the loaded classes on the first clean stop, map them later.
    if CDS_ARCHIVE.exists():
        jvm.append(f"-XX:SharedArchiveFile={CDS_ARCHIVE}")
    else:
        jvm.append(f"-XX:ArchiveClassesAtExit={CDS_ARCHIVE}")
    cmd = ["java", *jvm, "-cp", classpath, MAIN_CLASS, str(data), "--watch-stdin",
           "--bolt-port", str(bolt_port), "--http-port", str(http_port), "--page-cache", page_cache]
    if password:
        cmd += ["--password", password]
    log_file = open(log, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file,
                            start_new_session=True)
    log_file.close()
    ready: dict[str, str] = {}
    got_ready = threading.Event()

    def pump() -> None:  # read the ready line, then keep draining stdout into the log
        with open(log, "ab") as out:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace")
                if line.startswith(READY) and not got_ready.is_set():
                    ready.update(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
                    got_ready.set()
                out.write(raw)
                out.flush()
        got_ready.set()  # EOF: the process ended

    threading.Thread(target=pump, name="neo4j-stdout", daemon=True).start()
    if not got_ready.wait(timeout) or "bolt" not in ready:
        alive = proc.poll() is None
        if alive:
            proc.kill()
            proc.wait()
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-30:]) if log.exists() else ""
        why = f"no ready line after {timeout:.0f} s" if alive else f"exited with code {proc.returncode}"
        raise ServerError(f"Neo4j test server did not start ({why}); command: {' '.join(cmd)}\n"
                          f"last lines of {log}:\n{tail}")
    return RunningServer(
        bolt_uri=ready["bolt"].rstrip("/"),
        http_uri=ready["http"].rstrip("/"),
        user="neo4j",
        password=password,
        data_dir=data,
        log_path=log,
        started_in=time.monotonic() - t0,
        proc=proc,
        _owns_dir=owns,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Start graphgen's local Neo4j test server.")
    ap.add_argument("--data", help="data directory (default: a temp dir, removed at exit)")
    ap.add_argument("--bolt-port", type=int, default=7687)
    ap.add_argument("--http-port", type=int, default=7474)
    ap.add_argument("--password", default="graphgen-test", help="password of user neo4j ('' = auth off)")
    ap.add_argument("--build-only", action="store_true", help="build the launcher and exit")
    args = ap.parse_args(argv)
    try:
        spent = build(quiet=False)
        if args.build_only:
            print(f"built in {spent:.1f} s" if spent else "already built")
            return 0
        server = start(args.data, password=args.password or None,
                       bolt_port=args.bolt_port, http_port=args.http_port)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Neo4j is up in {server.started_in:.1f} s\n  Bolt:    {server.bolt_uri}\n"
          f"  Browser: {server.browser_url}\n  user:    neo4j / {server.password or '(auth off)'}\n"
          f"  log:     {server.log_path}\nCtrl-C stops it.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set() and server.proc.poll() is None:
            stop.wait(1.0)
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
