# The soak's workload: Python processes that start and exit all the time
# (RATE a second, each living about a second and a half, mostly asleep),
# and two processes whose threads are born and die THREADS times a second in
# all.
# Runs until killed. Standard library only.
import os, subprocess, sys, threading, time

RATE = int(os.environ.get("SOAK_PROCS", "20"))
THREADS = int(os.environ.get("SOAK_THREADS", "1300"))

CHILD = """
import time
def soak_child():
    end = time.time() + 0.02
    while time.time() < end:
        pass
    time.sleep(1.5)
soak_child()
"""

THREADER = """
import sys, threading, time
rate = int(sys.argv[1])
def soak_thread():
    sum(range(100))
def soak_threads():
    n, last = 0, time.time()
    while True:
        t0 = time.time()
        batch = [threading.Thread(target=soak_thread) for _ in range(rate // 10)]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
        n += len(batch)
        if t0 - last >= 1:
            print("threads", n, threading.get_native_id(), flush=True)
            last = t0
        time.sleep(max(0.0, 0.1 - (time.time() - t0)))
soak_threads()
"""

def main():
    for _ in range(2):
        subprocess.Popen([sys.executable, "-S", "-c", THREADER, str(THREADS // 2)])
    children = []
    interval = 1.0 / RATE
    next_at = last = time.time()
    n = 0
    while True:
        children.append(subprocess.Popen([sys.executable, "-S", "-c", CHILD]))
        n += 1
        if time.time() - last >= 1:
            print("procs", n, flush=True)
            last = time.time()
        children = [c for c in children if c.poll() is None]
        next_at += interval
        time.sleep(max(0.0, next_at - time.time()))

main()
