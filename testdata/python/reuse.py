"""Code objects freed and re-created in a loop, so their addresses are reused.

Functions named leaf_N spin in their own body and call nothing; functions
named caller_N only call spin(). A symbolizer that names a frame after the
code object that used to live at its address shows a caller_N frame as a
leaf, or a leaf_N frame with spin above it. Usage: python reuse.py SECONDS"""
import sys
import time


def spin():
    end = time.thread_time() + 0.0005
    while time.thread_time() < end: pass


LEAF = "def leaf_{i}():\n    end = time.thread_time() + 0.0005\n    while time.thread_time() < end: pass\n"
CALLER = "def caller_{i}():\n    spin()\n"

print("ready", flush=True)
sys.stdin.readline()  # "go": the profiler is sampling; the timed work starts now
deadline = time.monotonic() + float(sys.argv[1])
i = 0
while time.monotonic() < deadline:
    # Distinct first line numbers make each code object's check bytes differ.
    src = "\n" * (i % 500) + (LEAF if i % 2 else CALLER).format(i=i)
    ns = {"time": time, "spin": spin}
    exec(compile(src, "<reuse>", "exec"), ns)
    for fn in ns.values():
        if callable(fn) and fn.__name__.startswith(("leaf_", "caller_")):
            fn()
    del ns, fn
    i += 1
