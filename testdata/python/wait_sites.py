"""One thread that sleeps 1 ms at eight places in turn, more than the kernel's
wait slots per thread (WAIT_SLOTS in bpf/types.h), so some of its waits are
summed in the shared wait table. Usage: python wait_sites.py"""
import sys
import threading
import time


def site0():
    time.sleep(0.001)


def site1():
    time.sleep(0.001)


def site2():
    time.sleep(0.001)


def site3():
    time.sleep(0.001)


def site4():
    time.sleep(0.001)


def site5():
    time.sleep(0.001)


def site6():
    time.sleep(0.001)


def site7():
    time.sleep(0.001)


def roamer():
    sites = [site0, site1, site2, site3, site4, site5, site6, site7]
    while True:
        for site in sites:
            site()


print("ready", flush=True)
sys.stdin.readline()  # "go"
threading.Thread(target=roamer, name="roamer", daemon=True).start()
sys.stdin.read()
