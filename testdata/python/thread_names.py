"""Threads with known names for ThreadNames: a plain Thread, a real
ThreadPoolExecutor worker, a thread renamed after start, one whose __dict__
was materialized, one with a non-ASCII name, EXTRA more, and a thread
threading never sees. Prints one JSON line (ident -> name and native id of
every thread threading knows, and the unknown thread's ident), then "ready",
and waits until stdin closes. Usage: python thread_names.py [EXTRA]"""
import concurrent.futures
import json
import sys
import threading
import _thread

extra = int(sys.argv[1]) if len(sys.argv) > 1 else 0
stop = threading.Event()
started = threading.Semaphore(0)


def park():
    started.release()
    stop.wait()


threads = [
    threading.Thread(target=park, name="worker-a"),
    threading.Thread(target=park, name="to-rename"),
    threading.Thread(target=park, name="dict-seen"),
    threading.Thread(target=park, name="unicode-名前-\U0001f40d"),
]
threads += [threading.Thread(target=park, name="extra-%d" % i) for i in range(extra)]
for t in threads:
    t.start()
threads[1].name = "renamed"
# The instance now has a real dict (3.11+), a combined one (≤3.10: a split
# table turns combined on a deletion).
threads[2].__dict__["_seen"] = True
del threads[2].__dict__["_seen"]

pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
pool.submit(park)

unknown = []
_thread.start_new_thread(lambda: (unknown.append(_thread.get_ident()), park()), ())

for _ in range(len(threads) + 2):
    started.acquire()

report = {"version": list(sys.version_info[:3]), "unknown": unknown[0], "threads": {}}
for t in threading.enumerate():
    native = getattr(t, "native_id", None)
    report["threads"][str(t.ident)] = {"name": t.name, "native_id": native}
print(json.dumps(report), flush=True)
print("ready", flush=True)
sys.stdin.read()
stop.set()
pool.shutdown()
