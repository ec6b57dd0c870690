"""Two Python threads passing a byte through pipes: every message is a
context switch and a handoff of the GIL, the off-CPU benchmark's Python
workload. Usage: python pingpong.py SPIN (busy-loop iterations per message,
to bring the switch rate down). Runs until killed."""
import os
import sys
import threading

spin = range(int(sys.argv[1]))
ping_r, ping_w = os.pipe()
pong_r, pong_w = os.pipe()


def echo():
    while True:
        c = os.read(ping_r, 1)
        for _ in spin:
            pass
        os.write(pong_w, c)


threading.Thread(target=echo, daemon=True).start()
while True:
    for _ in spin:
        pass
    os.write(ping_w, b"x")
    os.read(pong_r, 1)
