"""The demo workload: a small ledger service that hashes, parses and sleeps."""
import hashlib
import json
import threading
import time


class Ledger:
    def __init__(self):
        self.entries = [{"id": i, "amount": i * 3 % 101} for i in range(2000)]

    def reconcile(self):
        total = 0
        for e in self.entries:
            total += e["amount"] * 7 % 13
        return total

    def digest(self):
        blob = json.dumps(self.entries).encode()
        return hashlib.sha256(blob).hexdigest()


def serve(ledger, stop):
    while not stop.is_set():
        ledger.reconcile()
        ledger.digest()


def idle(stop):
    while not stop.is_set():
        time.sleep(0.05)


def main():
    stop = threading.Event()
    ledger = Ledger()
    threading.Thread(target=idle, args=(stop,), name="idler", daemon=True).start()
    serve(ledger, stop)


if __name__ == "__main__":
    main()
