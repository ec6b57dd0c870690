"""Busy threads whose Python stacks are a given depth, for the cost benchmarks.
Usage: python depth.py DEPTH SECONDS [THREADS]"""
import sys
import threading
import time


def spin(n, end):
    if n > 1:
        return spin(n - 1, end)
    while time.monotonic() < end: pass


depth, seconds = int(sys.argv[1]), float(sys.argv[2])
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
end = time.monotonic() + seconds
# <module> and spin's own frames count toward the depth.
workers = [threading.Thread(target=spin, args=(depth - 2, end)) for _ in range(threads - 1)]
for w in workers:
    w.start()
print("ready", flush=True)
spin(depth - 1, end)
for w in workers:
    w.join()
