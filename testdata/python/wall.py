"""Five threads that spend their time five ways, for the wall-time tests:
busy on the CPU, sleeping 50 ms or 1 ms at a time, waiting on a queue,
blocked reading a pipe; and a sixth, started half a second after "go",
that sleeps one second and ends.
Usage: python wall.py SECONDS"""
import os
import queue
import sys
import threading
import time


def busy(stop):
    while not stop.is_set():
        pass


def sleeper(stop):
    while not stop.is_set():
        time.sleep(0.05)


def fast_sleeper(stop):
    # Up to ~1,000 switch-outs a second: sleeps of 1 ms, each followed by a
    # wait for the GIL.
    while not stop.is_set():
        time.sleep(0.001)


def short_lived():
    # Born half a second into the recording, gone a second later.
    time.sleep(1.0)


def waiter(q):
    q.get()


def reader(fd):
    os.read(fd, 1)


stop = threading.Event()
q = queue.Queue()
r, w = os.pipe()
threads = [
    threading.Thread(target=busy, args=(stop,), name="busy"),
    threading.Thread(target=sleeper, args=(stop,), name="sleeper"),
    threading.Thread(target=fast_sleeper, args=(stop,), name="fast_sleeper"),
    threading.Thread(target=waiter, args=(q,), name="waiter"),
    threading.Thread(target=reader, args=(r,), name="reader"),
]
for t in threads:
    t.start()
print("ready", flush=True)
sys.stdin.readline()  # "go": the profiler is sampling; the timed work starts now
time.sleep(0.5)
late = threading.Thread(target=short_lived, name="short_lived")
started = time.monotonic()
late.start()
late.join()
# The thread lived within this interval but for its exit: join returns once
# it has let go of Python, and the OS thread ends a little later. The test
# bounds its wall time by it.
print("short_lived %.6f" % (time.monotonic() - started), flush=True)
time.sleep(float(sys.argv[1]))
stop.set()
q.put(None)
os.write(w, b"x")
for t in threads:
    t.join()
