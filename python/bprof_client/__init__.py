"""Register this process with a bprof agent so that it is profiled.

Pure Python, no dependencies, CPython 3.7 and later::

    from bprof_client import Profiler

    p = Profiler(application_name="my-app", period=45, upload_timeout=10,
                 labels={"env": "prod"})
    p.start()
    ...
    p.stop()

start() connects to the agent's Unix socket (``socket_path``, by default
``$BPROF_SOCKET`` or ``/run/bprof.sock``) and asks it to profile *this*
process: the agent identifies the caller by the socket's peer credentials.
The connection stays open until stop(); if the process exits first, the
agent notices the closed connection and ships the last batch anyway.

When the agent records memory profiles (``bprof agent --memory``), start()
also loads the allocation sampler the agent hands over (a small shared
library, with ctypes) so that allocations are sampled inside this process;
stop() turns sampling off again. Pass ``memory=False`` to decline. A sampler
that cannot be loaded is a warning (warnings.warn), not an error: CPU and
wall profiles go on.

The protocol is one JSON line per request and per answer; see docs/AGENT.md.
"""

import json
import os
import socket
import threading
import warnings

__all__ = ["Profiler", "ProfilerError"]

DEFAULT_SOCKET = "/run/bprof.sock"
_MAX_REPLY = 64 * 1024


class ProfilerError(RuntimeError):
    """The agent could not be reached or refused the request."""


class Profiler(object):
    """Profile this process with the bprof agent between start() and stop().

    application_name: the name the profiles are filed under (the agent's
        default when None).
    period: seconds per batch (the agent's default when None).
    upload_timeout: seconds allowed for one upload (the agent's default when
        None).
    labels: a dict of str to str added to every batch.
    socket_path: the agent's registration socket.
    timeout: seconds to wait for the agent to answer.
    memory: load the allocation sampler when the agent offers it (it does
        when it runs with --memory).
    """

    def __init__(self, application_name=None, period=45, upload_timeout=10,
                 labels=None, socket_path=None, timeout=5.0, memory=True):
        if socket_path is None:
            socket_path = os.environ.get("BPROF_SOCKET", DEFAULT_SOCKET)
        self.application_name = application_name
        self.period = period
        self.upload_timeout = upload_timeout
        self.labels = dict(labels or {})
        self.socket_path = socket_path
        self.timeout = timeout
        self.memory = memory
        self._sampling = False  # this process's allocation sampler is on for us
        self._sock = None
        self._file = None
        self._pid = None
        self._lock = threading.Lock()

    def start(self):
        """Register this process with the agent. Raises ProfilerError."""
        with self._lock:
            if self._sock is not None and self._pid == os.getpid():
                raise ProfilerError("profiler already started")
            self._forget()
            msg = {"op": "start", "labels": {}}
            if self.application_name is not None:
                msg["application_name"] = str(self.application_name)
            if self.period is not None:
                msg["period"] = float(self.period)
            if self.upload_timeout is not None:
                msg["upload_timeout"] = float(self.upload_timeout)
            for k, v in self.labels.items():
                msg["labels"][str(k)] = str(v)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except (OSError, socket.error) as e:
                sock.close()
                raise ProfilerError(
                    "connect to bprof agent at %s: %s" % (self.socket_path, e))
            self._sock = sock
            self._file = sock.makefile("rb")
            self._pid = os.getpid()
            try:
                ans = self._request(msg)
            except Exception:
                self._forget()
                raise
            self._start_memory(ans)

    def _start_memory(self, ans):
        # Memory profiles: load the sampler the agent offers, then tell it so
        # (it attaches its probes and turns sampling on). Failures only warn.
        if ans.get("memory_error"):
            warnings.warn("bprof: no memory profiles: %s" % ans["memory_error"], RuntimeWarning, stacklevel=3)
        offer = ans.get("memory")
        if not isinstance(offer, dict) or not self.memory:
            return
        from . import _alloc
        try:
            _alloc.load(str(offer.get("library")))
        except Exception as e:
            warnings.warn("bprof: no memory profiles: %s" % (e,), RuntimeWarning, stacklevel=3)
            try:
                self._request({"op": "memory", "error": str(e)})
            except ProfilerError:
                pass
            return
        try:
            self._request({"op": "memory"})
            self._sampling = True
        except ProfilerError as e:
            warnings.warn("bprof: no memory profiles: %s" % (e,), RuntimeWarning, stacklevel=3)

    def stop(self):
        """Unregister: the agent ships this process's last batch now.

        Does nothing if the profiler was not started, or was started by the
        parent of this (forked) process.
        """
        with self._lock:
            if self._sock is None:
                return
            if self._pid != os.getpid():
                self._forget()
                return
            if self._sampling:
                from . import _alloc
                _alloc.disable()
                self._sampling = False
            try:
                self._request({"op": "stop"})
            finally:
                self._forget()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _request(self, msg):
        line = (json.dumps(msg, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            self._sock.sendall(line)
            reply = self._file.readline(_MAX_REPLY)
        except (OSError, socket.error) as e:
            raise ProfilerError("talk to bprof agent: %s" % (e,))
        if not reply:
            raise ProfilerError("bprof agent closed the connection")
        try:
            ans = json.loads(reply.decode("utf-8"))
        except ValueError as e:
            raise ProfilerError("bprof agent answered %r: %s" % (reply[:80], e))
        if not isinstance(ans, dict) or not ans.get("ok"):
            err = ans.get("error") if isinstance(ans, dict) else None
            raise ProfilerError("bprof agent refused %s: %s" % (msg.get("op"), err or "no reason given"))
        return ans

    def _forget(self):
        # Close our end without telling the agent (a forked child must not
        # unregister its parent; the parent's descriptor stays open there).
        if self._file is not None:
            try:
                self._file.close()
            except Exception:
                pass
        if self._sock is not None:
            try:
                self._sock.close()
            except Exception:
                pass
        self._sock = self._file = self._pid = None
        self._sampling = False
