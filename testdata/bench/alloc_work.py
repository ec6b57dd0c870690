"""An allocation-heavy workload, for the memory overhead benchmark: dicts,
lists, tuples, strings and bytes made and dropped, as a web service's request
handling does. A profiler attaches while it waits, then it works and reports
its own elapsed and CPU time.
Usage: python alloc_work.py ITERATIONS [--load LIB PYDIR] [--enable]
  --load: load bprof's allocation sampler from LIB (bprof_client's loader,
          found in PYDIR), as a registered process does; sampling stays off
  --enable: also turn it on (default mean, 512 KiB), with no profiler attached
Prints "ready", starts on a line on stdin, prints {"wall": s, "cpu": s}."""
import json
import sys
import time

iterations = int(sys.argv[1])
args = sys.argv[2:]
while args:
    if args[0] == "--load":
        sys.path.insert(0, args[2])
        from bprof_client import _alloc
        _alloc.load(args[1])
        args = args[3:]
    elif args[0] == "--enable":
        _alloc.enable(0)
        args = args[1:]
    else:
        sys.exit("alloc_work.py: unknown argument %r" % args[0])


def handle(i):
    req = {"id": i, "path": "/items/%d" % i, "headers": [("a", "b"), ("c", str(i))]}
    items = [{"n": j, "name": "item-%d" % j, "blob": bytes(64)} for j in range(8)]
    body = b"".join(it["blob"] for it in items)
    return len(req["path"]) + len(body) + len(items)


print("ready", flush=True)
sys.stdin.readline()
wall, cpu = time.perf_counter(), time.thread_time()
total = 0
for i in range(iterations):
    total += handle(i)
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.thread_time() - cpu}), flush=True)
