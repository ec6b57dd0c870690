package python

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// PEP 768 (CPython 3.14+): a debugger asks a running interpreter to execute a
// Python file at its next safe point, the way sys.remote_exec does
// (Python/sysmodule.c, send_exec_to_proc_handle): for a thread state, write
// the file's path into its _PyRemoteDebuggerSupport, set the pending flag,
// and set _PY_EVAL_PLEASE_STOP_BIT in its eval_breaker so the eval loop
// looks. The thread that next checks its eval breaker runs the file with the
// GIL held (Python/ceval_gil.c, _PyRunRemoteDebugger). Every field comes from
// the target's _Py_DebugOffsets.

// evalPleaseStopBit is _PY_EVAL_PLEASE_STOP_BIT (Include/internal/pycore_ceval.h).
const evalPleaseStopBit = 1 << 5

// ErrRemoteDebugDisabled means the target runs with remote debugging off
// (PYTHON_DISABLE_REMOTE_DEBUG, -X disable_remote_debug, or a build
// without it).
var ErrRemoteDebugDisabled = errors.New("remote debugging is disabled in the target (PYTHON_DISABLE_REMOTE_DEBUG, -X disable_remote_debug or --without-remote-debug)")

// ReadWriterAt reads and writes a target's memory.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// remoteFields are the PEP 768 offsets of one target.
type remoteFields struct {
	interpHead, threadsHead, tstateNext, nativeTID uint64
	enabled, evalBreaker, support, pending, path   uint64
	pathSize                                       uint64
}

func readRemoteFields(mem io.ReaderAt, runtimeAddr uint64) (*remoteFields, error) {
	d, err := ReadDebugOffsets(mem, runtimeAddr)
	if err != nil {
		return nil, err
	}
	if d.FreeThreaded {
		return nil, fmt.Errorf("Python %s is a free-threaded build, which bprof does not support", d.Version)
	}
	if !d.Version.AtLeast(3, 14) {
		return nil, fmt.Errorf("Python %s has no remote execution (PEP 768 is 3.14+)", d.Version)
	}
	f := d.Fields
	r := &remoteFields{
		interpHead:  f["runtime_state.interpreters_head"],
		threadsHead: f["interpreter_state.threads_head"],
		tstateNext:  f["thread_state.next"],
		nativeTID:   f["thread_state.native_thread_id"],
		enabled:     f["debugger_support.remote_debugging_enabled"],
		evalBreaker: f["debugger_support.eval_breaker"],
		support:     f["debugger_support.remote_debugger_support"],
		pending:     f["debugger_support.debugger_pending_call"],
		path:        f["debugger_support.debugger_script_path"],
		pathSize:    f["debugger_support.debugger_script_path_size"],
	}
	ts := f["thread_state.size"]
	if r.pathSize < 64 || r.pathSize > 1<<16 || r.support+r.path+r.pathSize > ts || r.evalBreaker+8 > ts {
		return nil, fmt.Errorf("Python %s: implausible remote debugging offsets in _Py_DebugOffsets (support %d, path %d+%d, thread state %d bytes)",
			d.Version, r.support, r.path, r.pathSize, ts)
	}
	return r, nil
}

// CheckRemoteExec says whether RemoteExec can work on the runtime at
// runtimeAddr (3.14+, remote debugging on), without writing anything.
func CheckRemoteExec(mem io.ReaderAt, runtimeAddr uint64) error {
	r, err := readRemoteFields(mem, runtimeAddr)
	if err != nil {
		return err
	}
	interp, err := readU64(mem, runtimeAddr+r.interpHead)
	if err != nil || interp == 0 {
		return fmt.Errorf("remote exec: no interpreter in the target (%v)", err)
	}
	on, err := readI32(mem, interp+r.enabled)
	if err != nil {
		return fmt.Errorf("remote exec: read remote_debugging_enabled: %w", err)
	}
	if on != 1 {
		return ErrRemoteDebugDisabled
	}
	return nil
}

// RemoteExec asks every thread of the main interpreter of the 3.14+ runtime
// at runtimeAddr to run the Python file at path (as the target sees it); the
// first thread to reach a safe point runs it, and each thread that gets there
// before CancelRemoteExec runs it again, so the file must be idempotent.
// It returns the number of threads asked.
func RemoteExec(mem ReadWriterAt, runtimeAddr uint64, path string) (int, error) {
	r, err := readRemoteFields(mem, runtimeAddr)
	if err != nil {
		return 0, err
	}
	if uint64(len(path)) >= r.pathSize {
		return 0, fmt.Errorf("remote exec: path %q is longer than the target's %d bytes", path, r.pathSize-1)
	}
	interp, err := readU64(mem, runtimeAddr+r.interpHead)
	if err != nil || interp == 0 {
		return 0, fmt.Errorf("remote exec: no interpreter in the target (%v)", err)
	}
	on, err := readI32(mem, interp+r.enabled)
	if err != nil {
		return 0, fmt.Errorf("remote exec: read remote_debugging_enabled: %w", err)
	}
	if on != 1 {
		return 0, ErrRemoteDebugDisabled
	}
	threads, err := remoteThreads(mem, r, interp)
	if err != nil {
		return 0, err
	}
	buf := append([]byte(path), 0)
	one := binary.LittleEndian.AppendUint32(nil, 1)
	asked := 0
	for _, ts := range threads {
		sup := ts + r.support
		if _, err := mem.WriteAt(buf, int64(sup+r.path)); err != nil {
			return asked, fmt.Errorf("remote exec: write script path: %w", err)
		}
		if _, err := mem.WriteAt(one, int64(sup+r.pending)); err != nil {
			return asked, fmt.Errorf("remote exec: set pending call: %w", err)
		}
		eb, err := readU64(mem, ts+r.evalBreaker)
		if err != nil {
			return asked, fmt.Errorf("remote exec: read eval breaker: %w", err)
		}
		// Not atomic, as in sys.remote_exec: a bit the target sets between
		// the read and the write is lost, and is set again by whoever wanted
		// it (a GIL drop request is repeated every switch interval).
		if _, err := mem.WriteAt(binary.LittleEndian.AppendUint64(nil, eb|evalPleaseStopBit), int64(ts+r.evalBreaker)); err != nil {
			return asked, fmt.Errorf("remote exec: set eval breaker: %w", err)
		}
		asked++
	}
	return asked, nil
}

// CancelRemoteExec clears the pending flag of every thread that has not run
// the file yet.
func CancelRemoteExec(mem ReadWriterAt, runtimeAddr uint64) error {
	r, err := readRemoteFields(mem, runtimeAddr)
	if err != nil {
		return err
	}
	interp, err := readU64(mem, runtimeAddr+r.interpHead)
	if err != nil || interp == 0 {
		return err
	}
	threads, err := remoteThreads(mem, r, interp)
	zero := make([]byte, 4)
	for _, ts := range threads {
		if _, werr := mem.WriteAt(zero, int64(ts+r.support+r.pending)); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return err
}

func remoteThreads(mem io.ReaderAt, r *remoteFields, interp uint64) ([]uint64, error) {
	ts, err := readU64(mem, interp+r.threadsHead)
	if err != nil {
		return nil, fmt.Errorf("remote exec: read thread list: %w", err)
	}
	var out []uint64
	seen := map[uint64]bool{}
	for ts != 0 && !seen[ts] && len(out) < MaxThreads {
		seen[ts] = true
		out = append(out, ts)
		if ts, err = readU64(mem, ts+r.tstateNext); err != nil {
			return out, fmt.Errorf("remote exec: read thread list: %w", err)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("remote exec: the target's interpreter has no thread")
	}
	return out, nil
}
