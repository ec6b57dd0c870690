# Loads a C library after the profiler attached: prints "ready", waits for
# "go" on stdin and a second more, then imports zlib (which maps zlib's module and libz) and spends
# argv[1] seconds compressing in compress_late.
import sys
import time

print("ready", flush=True)
sys.stdin.readline()  # "go": the profiler is sampling; the timed work starts now
time.sleep(1)
import zlib  # noqa: E402  (the point: a library mapped after attach)

TEXT = (b"the quick brown fox jumps over the lazy dog " * 20000)[: 1 << 20]


def compress_late():
    return zlib.compress(TEXT, 6)


end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    compress_late()
