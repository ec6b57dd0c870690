"""Every shape of Python code bprof must name: nested functions, methods,
a constructor, deep recursion, generators, an asyncio coroutine, a lambda, module-level
code, and a thread started late. Usage: python shapes.py SECONDS"""
import asyncio
import sys
import threading
import time


def burn(seconds=0.003):
    end = time.thread_time() + seconds
    while time.thread_time() < end: pass


def outer():
    def inner():
        burn()
    inner()


class Ledger:
    def __init__(self):
        burn()

    def reconcile(self):
        burn()


def recurse(n):
    if n == 0:
        burn()
    else:
        recurse(n - 1)


def ticker():
    while True:
        burn()
        yield


async def fetch():
    burn()
    await asyncio.sleep(0)


square = lambda: burn()  # noqa: E731


def late_worker(stop):
    while not stop.is_set():
        burn()


stop = threading.Event()
gen = ticker()
print("ready", flush=True)
sys.stdin.readline()  # "go": the profiler is sampling; the timed work starts now
deadline = time.monotonic() + float(sys.argv[1])
late_at = time.monotonic() + float(sys.argv[2]) if len(sys.argv) > 2 else None
while time.monotonic() < deadline:
    outer()
    Ledger().reconcile()
    recurse(150)
    next(gen)
    asyncio.run(fetch())
    square()
    end = time.thread_time() + 0.003
    while time.thread_time() < end: pass  # module-level code
    if late_at is not None and time.monotonic() > late_at:
        late_at = None
        threading.Thread(target=late_worker, args=(stop,), name="late").start()
stop.set()
