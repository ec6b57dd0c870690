"""A workload whose CPU time per function is known, for the accuracy
benchmark: work_a, work_b and work_c get about 50, 30 and 20 % of it, and the
workload measures each itself with time.thread_time().
Usage: python shares.py SECONDS
Prints "ready", starts on a line on stdin, works for SECONDS of CPU time and
prints {"work_a": s, "work_b": s, "work_c": s, "total": s} in thread CPU
seconds; total covers the whole working loop, its own bookkeeping included.
Each function loops in its own frame, so a sample in it names it whatever
the tool does with the native frames above."""
import json
import sys
import time

UNIT = 20000  # iterations: about 1 ms of CPU


def work_a(n):
    total = 0
    for i in range(n):
        total += i ^ 5
    return total


def work_b(n):
    total = 0
    for i in range(n):
        total += i ^ 3
    return total


def work_c(n):
    total = 0
    for i in range(n):
        total += i ^ 7
    return total


seconds = float(sys.argv[1])
spent = {"work_a": 0.0, "work_b": 0.0, "work_c": 0.0}
plan = [(work_a, 5), (work_b, 3), (work_c, 2)]
print("ready", flush=True)
sys.stdin.readline()
start = time.thread_time()
now = start
while now - start < seconds:
    for fn, units in plan:
        fn(units * UNIT)
        t = time.thread_time()
        spent[fn.__name__] += t - now
        now = t
spent["total"] = time.thread_time() - start
print(json.dumps(spent), flush=True)
