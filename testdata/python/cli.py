"""A target for the command-line tests (cmd/bprof). Usage:

  cli.py burn SECONDS STATUS   spin in hot() for SECONDS of CPU time, then exit STATUS
  cli.py signal                spin in hot() for 0.5 s of CPU, print "ready", spin on;
                               SIGTERM exits 7
  cli.py fork N SECONDS        fork N children that spin in child_work() for
                               SECONDS of CPU, wait for them, exit 0
  cli.py forkexec SECONDS      fork two children: one spins in child_work()
                               for SECONDS of CPU, the other waits 0.3 s, then
                               execs "cli.py burn SECONDS 0"; wait, exit 0
Runs on Python 3.7 and later.
"""
import os
import signal
import sys
import time


def hot(seconds):
    """Spins for seconds of this thread's CPU time (not wall time), so a test
    can expect rate × seconds samples however busy the machine is."""
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += 1
    return n


def child_work(seconds):
    hot(seconds)


def main():
    mode = sys.argv[1]
    if mode == "burn":
        hot(float(sys.argv[2]))
        sys.exit(int(sys.argv[3]))
    if mode == "signal":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
        hot(0.5)
        print("ready", flush=True)
        hot(60)
        sys.exit(1)
    if mode == "fork":
        n, seconds = int(sys.argv[2]), float(sys.argv[3])
        kids = []
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                child_work(seconds)
                os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.waitpid(pid, 0)
        return
    if mode == "forkexec":
        seconds = float(sys.argv[2])
        kids = []
        pid = os.fork()
        if pid == 0:
            child_work(seconds)
            os._exit(0)
        kids.append(pid)
        pid = os.fork()
        if pid == 0:
            time.sleep(0.3)  # long enough to be found (and attached) as a forked copy
            os.execv(sys.executable, [sys.executable, __file__, "burn", sys.argv[2], "0"])
        kids.append(pid)
        for pid in kids:
            os.waitpid(pid, 0)
        return
    sys.exit("unknown mode " + mode)


main()
