"""Memory profile workload: a known allocation volume per function, and
memory kept alive on request.

Each round, alloc_big, alloc_mid and alloc_small allocate bytes objects of
fixed sizes (each freed by the next); their shares of the bytes allocated are
fixed, and "truth" prints them. "hold MB" makes hold() keep MB MiB alive (in
64 KiB objects) and answers "held"; "free" drops them and answers "freed".
"fork" forks a child that allocates for a second and exits 0, waits for it
and answers "child exit STATUS". "exit" stops the threads and exits 0.
Commands come on stdin, one a line.

Options: --load LIB PYDIR: load bprof's allocation sampler from LIB through
bprof_client (found in PYDIR), as a registered process does; --threads N:
N threads run the rounds (default 1, the main thread).
"""
import json
import os
import sys
import threading
import time
import warnings

# 3.12+ warns about fork() in a threaded process; the test forks on purpose.
warnings.filterwarnings("ignore", category=DeprecationWarning)

args = sys.argv[1:]
nthreads = 1
while args:
    if args[0] == "--load":
        sys.path.insert(0, args[2])
        from bprof_client import _alloc
        _alloc.load(args[1])
        args = args[3:]
    elif args[0] == "--threads":
        nthreads = int(args[1])
        args = args[2:]
    else:
        sys.exit("memory.py: unknown argument %r" % args[0])

BIG, MID, SMALL = 16000, 1000, 100


def alloc_big():
    for _ in range(4):
        x = bytes(BIG)


def alloc_mid():
    for _ in range(32):
        x = bytes(MID)


def alloc_small():
    for _ in range(100):
        x = bytes(SMALL)


def truth():
    # What each function allocates a round: the objects' sizes as the
    # allocator sees them (sys.getsizeof: header + payload).
    per = {
        "alloc_big": 4 * sys.getsizeof(bytes(BIG)),
        "alloc_mid": 32 * sys.getsizeof(bytes(MID)),
        "alloc_small": 100 * sys.getsizeof(bytes(SMALL)),
    }
    total = sum(per.values())
    return {k: v / total for k, v in per.items()}


held = []


def hold(mb):
    held.extend([bytes(65536) for _ in range(mb * 16)])


requests = []


def commands():
    for line in sys.stdin:
        requests.append(line.split())


def rounds(stop):
    while not stop.is_set():
        alloc_big()
        alloc_mid()
        alloc_small()


def child():
    end = time.time() + 1
    while time.time() < end:
        alloc_big()
        alloc_mid()
        alloc_small()
    os._exit(0)


stop = threading.Event()
workers = [threading.Thread(target=rounds, args=(stop,), name="worker-%d" % i) for i in range(nthreads - 1)]
for w in workers:
    w.start()
threading.Thread(target=commands, daemon=True).start()
print("ready", flush=True)
while True:
    alloc_big()
    alloc_mid()
    alloc_small()
    while requests:
        cmd = requests.pop(0)
        if cmd[0] == "truth":
            print(json.dumps(truth()), flush=True)
        elif cmd[0] == "hold":
            hold(int(cmd[1]))
            print("held", flush=True)
        elif cmd[0] == "free":
            del held[:]
            print("freed", flush=True)
        elif cmd[0] == "fork":
            pid = os.fork()
            if pid == 0:
                child()
            _, status = os.waitpid(pid, 0)
            print("child exit %d" % status, flush=True)
        elif cmd[0] == "exit":
            stop.set()
            for w in workers:
                w.join()
            sys.exit(0)
