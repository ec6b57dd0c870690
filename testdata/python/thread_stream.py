"""A process that keeps starting threads, as a server with a thread per
request does: after "go", batches of 10 threads that each sleep 20 ms are
started and joined, until stdin closes. Each new thread waits on a stack of
its own. Usage: python thread_stream.py"""
import sys
import threading
import time


def request():
    time.sleep(0.02)


def serve():
    while True:
        ths = [threading.Thread(target=request) for _ in range(10)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()


print("ready", flush=True)
sys.stdin.readline()  # "go"
threading.Thread(target=serve, daemon=True).start()
sys.stdin.read()
