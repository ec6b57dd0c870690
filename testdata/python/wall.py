"""Four threads that spend their time four ways, for the wall-time tests:
busy on the CPU, sleeping, waiting on a queue, blocked reading a pipe.
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
    threading.Thread(target=waiter, args=(q,), name="waiter"),
    threading.Thread(target=reader, args=(r,), name="reader"),
]
for t in threads:
    t.start()
print("ready", flush=True)
sys.stdin.readline()  # "go": the profiler is sampling; the timed work starts now
time.sleep(float(sys.argv[1]))
stop.set()
q.put(None)
os.write(w, b"x")
for t in threads:
    t.join()
