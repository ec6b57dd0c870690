"""A target for bprof's stack-walking tests.

The main thread runs <module> -> a() -> K().m() -> c(); c prints one JSON line
and then spins. A second thread spins in worker(). The JSON gives both
threads' idents and the line numbers each frame must show, found from the
marker comments of this file. Runs on Python 3.7 and later.
"""
import json
import sys
import threading


def marker_lines():
    lines = {}
    with open(__file__) as f:
        for n, text in enumerate(f, 1):
            if "# LINE:" in text:
                lines.setdefault(text.split("# LINE:")[1].strip(), []).append(n)
    return lines


def worker(ready):
    ready.set()
    y = 0
    while True:  # LINE: worker
        y += 1  # LINE: worker


def c():
    ready = threading.Event()
    t = threading.Thread(target=worker, args=(ready,), daemon=True)
    t.start()
    ready.wait()
    native = getattr(threading, "get_native_id", lambda: 0)
    print(json.dumps({
        "version": list(sys.version_info[:3]),
        "ident": threading.get_ident(),
        "native_id": native(),
        "worker_ident": t.ident,
        "worker_native_id": getattr(t, "native_id", 0) or 0,
        "lines": marker_lines(),
    }), flush=True)
    x = 0
    while True:  # LINE: c
        x += 1  # LINE: c


class K:
    def m(self):
        return c()  # LINE: m


def a():
    return K().m()  # LINE: a


a()  # LINE: <module>
