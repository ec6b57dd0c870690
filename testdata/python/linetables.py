"""Dump line tables and CPython's own line numbers for bprof's tests.

Usage: python3.X linetables.py [--small]

Prints one JSON object: the interpreter version and, for every code object of
this file (and, without --small, of a few standard library modules), its line
table (hex), co_firstlineno, and pairs (instruction offset, line) where the
line comes from CPython's C function PyCode_Addr2Line called through ctypes.

The instruction offset is what bprof's walker records:
  3.7-3.9  byte offset (f_lasti)
  3.10     code units (f_lasti / 2 as C stores it)
  3.11+    byte offset from the start of co_code_adaptive
A line of None (no line) is written as 0. Runs on Python 3.7 and later.
"""
import ctypes
import json
import sys
import types

V = sys.version_info[:3]

addr2line = ctypes.pythonapi.PyCode_Addr2Line
addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
addr2line.restype = ctypes.c_int


def table(code):
    if V < (3, 10):
        return code.co_lnotab
    return code.co_linetable


def pairs(code):
    n = len(code.co_code)
    out = []
    for byte in [-2] + list(range(0, n, 2)):
        line = code.co_firstlineno if byte < 0 else addr2line(code, byte)
        if line is None or line < 0:
            line = 0
        instr = byte // 2 if V[:2] == (3, 10) else byte
        out.append([instr, line])
    return out


def walk(code, out):
    out.append({
        "name": getattr(code, "co_qualname", code.co_name),
        "firstlineno": code.co_firstlineno,
        "table": table(code).hex(),
        "pairs": pairs(code),
    })
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            walk(c, out)


def generated():
    """Source with line jumps larger than one table entry can hold."""
    lines = ["def far_lines(n):", "    total = 0"]
    lines += [""] * 300
    lines += ["    for i in range(n):", "        total += i"]
    lines += ["#"] * 200
    lines += ["        if total > 10:", "            break"]
    lines += ["    return (total +", "            " + " + ".join(str(i) for i in range(400)) + ")"]
    return compile("\n".join(lines) + "\n", "<generated>", "exec")


# Functions with shapes the tables encode differently.
def loops(n):
    s = 0
    for i in range(n):
        if i % 3:
            s += i
        else:
            s -= 1
    while s > 100:
        s //= 2
    return s


def handlers(x):
    try:
        y = 1 / x
    except ZeroDivisionError:
        y = None
    finally:
        x = 0
    return y


def comprehension(xs):
    return [x * 2
            for x in xs
            if x]


class K:
    def method(self, a,
               b=2):
        return (a +
                b)


def gen(n):
    for i in range(n):
        yield i
    yield from range(3)


def main():
    small = "--small" in sys.argv
    codes = []
    with open(__file__) as f:
        walk(compile(f.read(), __file__, "exec"), codes)
    walk(generated(), codes)
    if not small:
        import importlib
        for name in ("textwrap", "json.decoder", "argparse"):
            mod = importlib.import_module(name)
            with open(mod.__file__) as f:
                walk(compile(f.read(), mod.__file__, "exec"), codes)
    json.dump({"version": list(V), "functions": codes}, sys.stdout)


if __name__ == "__main__":
    main()
