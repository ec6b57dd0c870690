# Python functions that spend their time in C libraries, for the native
# unwinding test: digest_blob in libcrypto (through _hashlib), compress_blob
# in libz (through the zlib module), dump_json in the _json accelerator.
# Prints "ready", waits for "go" on stdin, runs for argv[1] seconds.
import hashlib
import json
import sys
import time
import zlib

BLOB = bytes(range(256)) * 4096 * 16  # 16 MiB: ~10 ms of SHA-256
TEXT = (b"the quick brown fox jumps over the lazy dog " * 20000)[: 1 << 20]
DOC = {"k%d" % i: ["value %d" % i, i, i * 0.5, {"nested": [i, "x" * 10]}] for i in range(5000)}


def digest_blob():
    return hashlib.sha256(BLOB).digest()


def compress_blob():
    return zlib.compress(TEXT, 6)


def dump_json():
    return json.dumps(DOC)


def main(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        digest_blob()
        compress_blob()
        dump_json()


print("ready", flush=True)
sys.stdin.readline()  # "go": the profiler is sampling; the timed work starts now
main(float(sys.argv[1]) if len(sys.argv) > 1 else 10)
