"""A CPU split the workload measures itself, for bprof's accuracy tests.

Usage: python split.py SECONDS. Runs alpha, beta and gamma in turn for
SECONDS (each for a random time, so no sampling rate can alias with the
loop), then prints {"share": {name: fraction of thread CPU time}} as JSON.
Lines marked LINE: are where the samples should land."""
import json
import random
import select
import sys
import time


def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end: pass  # LINE:burn


def alpha():
    burn(0.006 * random.random())  # LINE:alpha


def beta():
    burn(0.003 * random.random())  # LINE:beta


def gamma():
    x = 0
    end = time.thread_time() + 0.002 * random.random()
    while time.thread_time() < end: x += 1  # LINE:gamma
    return x


spent = {"alpha": 0.0, "beta": 0.0, "gamma": 0.0}
funcs = (("alpha", alpha), ("beta", beta), ("gamma", gamma))
print("ready", flush=True)
sys.stdin.readline()  # "go": the profiler is sampling; the timed work starts now
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline and not select.select([sys.stdin], [], [], 0)[0]:  # until "stop"
    for name, fn in funcs:
        t0 = time.thread_time()
        fn()
        spent[name] += time.thread_time() - t0
total = sum(spent.values())
print(json.dumps({"share": {k: v / total for k, v in spent.items()}}), flush=True)
