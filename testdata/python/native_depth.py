# A stack DEPTH Python frames deep whose leaf spends its time in C, about 30
# native frames further down (json's C encoder, recursing through nested
# lists), for the cost of unwinding native and Python frames together.
# Usage: native_depth.py DEPTH SECONDS. Prints "ready".
import json
import sys
import time

NEST = 8  # lists inside lists: two native frames per level


def nested(n):
    doc = [float(i) * 0.5 for i in range(2000)]
    for _ in range(n):
        doc = [doc]
    return doc


DOC = nested(NEST)


def dive(n, end):
    if n > 1:
        return dive(n - 1, end)
    while time.monotonic() < end:
        json.dumps(DOC)


depth = int(sys.argv[1]) if len(sys.argv) > 1 else 64
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
print("ready", flush=True)
# dive's frames plus <module>: depth Python frames in all.
dive(depth - 1, time.monotonic() + seconds)
