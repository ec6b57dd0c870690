"""A process that maps libpython and a few hundred shared objects and keeps
running code in them, for the symbolization benchmark (and later the unwind
table one). The libraries are generated at bench time by bench/manylibs.go:
DIR holds libbenchNNN.so, each exporting benchNNN_f0 ... benchNNN_f3(long).
Usage: python many_libs.py DIR COUNT SECONDS (loads libbench000 to COUNT-1)
Prints "ready" once every library is loaded; then calls each function of
each library in turn (most of the time) with a pure-Python loop between
libraries (the rest), until SECONDS have passed."""
import ctypes
import os
import sys
import time

FUNCS = 4
CALL = 20000  # loop iterations per C call: tens of microseconds


def python_part(n):
    total = 0
    for i in range(n):
        total += i % 11
    return total


directory, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
funcs = []
for i in range(count):
    stem = "bench%03d" % i
    lib = ctypes.CDLL(os.path.join(directory, "lib%s.so" % stem))
    for k in range(FUNCS):
        fn = getattr(lib, "%s_f%d" % (stem, k))
        fn.argtypes, fn.restype = [ctypes.c_long], ctypes.c_long
        funcs.append(fn)
print("ready", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    for i, fn in enumerate(funcs):
        fn(CALL)
        if i % FUNCS == FUNCS - 1:
            python_part(40)
