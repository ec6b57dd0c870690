"""Load bprof's allocation sampler into this process (memory profiles).

The sampler is a small shared library the bprof agent hands over (its path
is in the agent's answer to "start"): it wraps CPython's object and mem
allocators and calls a probe function for a sampled allocation, where the
agent's uprobe takes the stacks, and keeps the sampled blocks not yet freed
in a set the agent reads for the live heap. Loading
it hooks the allocators with sampling off; the agent turns sampling on once
its probes are attached. stop() turns it off again: the hooks stay (someone
may have chained after them) and pass allocations through.

CPython 3.7 and later with a GIL; free-threaded builds are refused.
"""

import ctypes
import os
import sysconfig
import threading

_lock = threading.Lock()
_dll = None          # the loaded library, once
_path = None


class AllocSamplerError(RuntimeError):
    """The sampler could not be loaded."""


def load(path):
    """Load the library at path and hook the allocators (sampling off).

    Idempotent: a second call with the same path does nothing more.
    """
    global _dll, _path
    with _lock:
        if _dll is not None:
            if path != _path:
                raise AllocSamplerError("another allocation sampler is loaded already (%s)" % _path)
            return
        if sysconfig.get_config_var("Py_GIL_DISABLED"):
            raise AllocSamplerError("free-threaded CPython is not supported")
        try:
            # PyDLL: calls keep the GIL, so no thread allocates while the
            # allocators are swapped.
            dll = ctypes.PyDLL(path)
            dll.bprof_alloc_install.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
            dll.bprof_alloc_install.restype = ctypes.c_uint32
            dll.bprof_alloc_enable.argtypes = [ctypes.c_uint64]
            dll.bprof_alloc_enable.restype = None
            dll.bprof_alloc_disable.argtypes = []
            dll.bprof_alloc_disable.restype = None
            api = ctypes.pythonapi
            got = dll.bprof_alloc_install(ctypes.cast(api.PyMem_GetAllocator, ctypes.c_void_p),
                                          ctypes.cast(api.PyMem_SetAllocator, ctypes.c_void_p), 6)
        except (OSError, AttributeError) as e:
            raise AllocSamplerError("load %s: %s" % (path, e))
        if got != 6:
            raise AllocSamplerError("load %s: hooked allocator domains %#x, want 0x6" % (path, got))
        _dll, _path = dll, path
        if hasattr(os, "register_at_fork"):
            # A forked child is not registered: it samples nothing until it
            # starts a Profiler of its own.
            os.register_at_fork(after_in_child=disable)


def enable(mean_bytes=0):
    """Sample one allocation every mean_bytes on average (0: keep the mean)."""
    if _dll is not None:
        _dll.bprof_alloc_enable(int(mean_bytes))


def disable():
    """Stop sampling: allocations pass through the hooks."""
    if _dll is not None:
        _dll.bprof_alloc_disable()


def loaded():
    """The path of the loaded library, or None."""
    return _path
