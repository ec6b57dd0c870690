"""A target with many threads, most of them blocked, a few busy, for the
scale benchmark. Usage: python many_threads.py THREADS BUSY SECONDS"""
import sys
import threading
import time

n, busy, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
stop = threading.Event()


def waiter():
    stop.wait()


def spinner():
    while not stop.is_set():
        pass


threads = [threading.Thread(target=spinner if i < busy else waiter) for i in range(n)]
for t in threads:
    t.start()
print("ready", flush=True)
time.sleep(seconds)
stop.set()
for t in threads:
    t.join()
