"""A fixed amount of pure-Python work, for the slowdown benchmark: a profiler
attaches while it waits, then it works and reports its own elapsed and CPU
time, so the figures do not depend on when the harness started or stopped it.
Usage: python fixed_work.py ITERATIONS [DEPTH]
Prints "ready", starts on a line on stdin, prints {"wall": s, "cpu": s}.
The work runs DEPTH Python frames deep (16 by default), as a service would."""
import json
import sys
import time


def leaf(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def nest(depth, n):
    if depth > 0:
        return nest(depth - 1, n)
    return leaf(n)


iterations = int(sys.argv[1])
depth = int(sys.argv[2]) if len(sys.argv) > 2 else 16
print("ready", flush=True)
sys.stdin.readline()
wall, cpu = time.perf_counter(), time.thread_time()
# <module>, the nest frames and leaf make DEPTH.
for _ in range(iterations):
    nest(depth - 3, 1000)
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.thread_time() - cpu}), flush=True)
