"""The child process behind `graphgen.llm.local.LocalServer`: llama.cpp's HTTP server
(the prebuilt `xllamacpp` wheel) for one GGUF file.

    python -m graphgen.llm.local_server MODEL.gguf --port 8123 --slots 2 --threads 1 --ctx 4096

It prints one line, `listening http://127.0.0.1:PORT`, once the model is loaded, then serves
until its standard input closes (the parent exited, however it exited) or it gets SIGTERM.
llama.cpp's own log goes to stderr, which the parent sends to a log file.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m graphgen.llm.local_server")
    ap.add_argument("model")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--slots", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ctx", type=int, default=4096, help="context tokens per slot")
    a = ap.parse_args()
    try:
        import xllamacpp
    except ImportError:
        print("error: xllamacpp is not installed: python -m pip install 'graphgen[local]'", flush=True)
        sys.exit(2)
    p = xllamacpp.CommonParams()
    p.model.path = a.model
    p.n_parallel = a.slots
    p.n_ctx = a.ctx * a.slots
    p.cpuparams.n_threads = a.threads
    p.cpuparams_batch.n_threads = a.threads
    p.hostnames = ["127.0.0.1"]
    p.port = a.port
    p.use_jinja = True  # the chat template stored in the GGUF file
    p.endpoint_slots = True
    try:
        server = xllamacpp.Server(p)
    except Exception as exc:  # a file that is not a GGUF model, a port taken meanwhile
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", flush=True)
        sys.exit(1)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    print(f"listening {server.listening_address}", flush=True)
    done.wait()
    del server


if __name__ == "__main__":
    main()
