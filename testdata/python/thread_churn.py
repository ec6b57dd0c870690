"""Thread churn, for pruning thread names: after "go", a thread named
lastword starts (prints "lastword TID"), waits for a line on stdin, spins
0.2 s of its own CPU time and ends (prints "lastword gone" once joined); then
BATCHES batches of 20 threads that each sleep 0.3 s are started and joined
(prints "churned").
Waits for stdin to close. Usage: python thread_churn.py BATCHES
(Python 3.8+: native_id)"""
import sys
import threading
import time


def lastword(started, spin):
    started.set()
    spin.wait()
    t0 = time.thread_time()
    while time.thread_time() - t0 < 0.2:
        pass


def brief():
    time.sleep(0.3)


batches = int(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # "go": the profiler is sampling
started, spin = threading.Event(), threading.Event()
t = threading.Thread(target=lastword, args=(started, spin), name="lastword")
t.start()
started.wait()
print("lastword", t.native_id, flush=True)
sys.stdin.readline()  # "spin"
spin.set()
t.join()
print("lastword gone", flush=True)
for b in range(batches):
    ths = [threading.Thread(target=brief, name="brief-%d-%d" % (b, i)) for i in range(20)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
print("churned", flush=True)
sys.stdin.read()
