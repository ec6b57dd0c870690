"""A target for bprof dump's tests: threads doing four things at once.
Usage: python hang.py WAITERS

  sleeper()            sleeps in time.sleep
  blocked_on_lock()    WAITERS threads blocked acquiring a lock that is held
  spin() x2            two threads spinning in Python, so that one at a time
                       waits for the GIL
Prints "ready" when every thread has started. Runs on Python 3.7 and later.
"""
import sys
import threading
import time


def sleeper():
    time.sleep(3600)


def blocked_on_lock(lock):
    lock.acquire()


def spin():
    n = 0
    while True:
        n += 1


def main():
    waiters = int(sys.argv[1])
    lock = threading.Lock()
    lock.acquire()
    threads = [threading.Thread(target=sleeper, name="sleeper", daemon=True)]
    threads += [threading.Thread(target=blocked_on_lock, args=(lock,), name="waiter", daemon=True) for _ in range(waiters)]
    threads += [threading.Thread(target=spin, name="spinner", daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    time.sleep(3600)


main()
