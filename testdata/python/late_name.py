"""A thread threading learns about only half-way through its life: started
with _thread, it spins for half a second unknown to threading, then names
itself (threading.current_thread() registers it) and spins half a second
more. Prints "ready" and waits for "go"; then prints "tid TID" from the
thread, and "done" once it has spun, and waits until stdin closes, the
thread with it. Usage: python late_name.py (3.8+)"""
import sys
import threading
import time
import _thread

done = threading.Event()


def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def late():
    print("tid %d" % threading.get_native_id(), flush=True)
    spin(0.5)
    threading.current_thread().name = "named_late"
    spin(0.5)
    done.set()
    sys.stdin.read()  # alive when the profile is cut


print("ready", flush=True)
sys.stdin.readline()  # "go"
_thread.start_new_thread(late, ())
done.wait()
print("done", flush=True)
sys.stdin.read()
