package python

import (
	"encoding/binary"
	"errors"
	"testing"
)

// fakeMem is a target's memory: a byte slice at address 0.
type fakeMem []byte

func (m fakeMem) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || int(off)+len(p) > len(m) {
		return 0, errors.New("out of range")
	}
	return copy(p, m[off:]), nil
}

func (m fakeMem) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || int(off)+len(p) > len(m) {
		return 0, errors.New("out of range")
	}
	return copy(m[off:], p), nil
}

// TestRemoteExec: RemoteExec writes the path, the pending flag and the
// eval-breaker bit into every thread state, at the offsets the target's
// _Py_DebugOffsets gives (here sid's 3.14.10 values); CancelRemoteExec
// clears the flags; a target with remote debugging off is refused.
func TestRemoteExec(t *testing.T) {
	o, err := OffsetsFor(Version{3, 14, 0})
	if err != nil {
		t.Fatal(err)
	}
	const (
		interpAt  = 0x1000
		ts1, ts2  = 0x4000, 0x8000
		headOff   = 816 // runtime_state.interpreters_head (any value: read from the header)
		support   = 304
		enabledAt = 8076
		tsSize    = 8192
	)
	d := fakeDebugOffsets(t, 14, o, map[string]uint64{
		"runtime_state.interpreters_head":            headOff,
		"thread_state.size":                          tsSize,
		"debugger_support.eval_breaker":              24,
		"debugger_support.remote_debugger_support":   support,
		"debugger_support.remote_debugging_enabled":  enabledAt,
		"debugger_support.debugger_pending_call":     0,
		"debugger_support.debugger_script_path":      4,
		"debugger_support.debugger_script_path_size": 512,
	})
	mem := make(fakeMem, 0x10000)
	copy(mem, d)
	le := binary.LittleEndian
	le.PutUint64(mem[headOff:], interpAt)
	le.PutUint32(mem[interpAt+enabledAt:], 1)
	le.PutUint64(mem[interpAt+uint64(o.InterpThreadsHead):], ts1)
	le.PutUint64(mem[ts1+uint64(o.TstateNext):], ts2)
	le.PutUint64(mem[ts1+24:], 0x1) // a GIL drop request pending: kept
	n, err := RemoteExec(mem, 0, "/tmp/x.py")
	if err != nil || n != 2 {
		t.Fatalf("RemoteExec: %d threads, %v", n, err)
	}
	for _, ts := range []int{ts1, ts2} {
		if got := string(mem[ts+support+4 : ts+support+4+10]); got != "/tmp/x.py\x00" {
			t.Errorf("thread state %#x: path %q", ts, got)
		}
		if le.Uint32(mem[ts+support:]) != 1 {
			t.Errorf("thread state %#x: pending call not set", ts)
		}
		if eb := le.Uint64(mem[ts+24:]); eb&evalPleaseStopBit == 0 || (ts == ts1 && eb&1 == 0) {
			t.Errorf("thread state %#x: eval breaker %#x", ts, eb)
		}
	}
	if err := CancelRemoteExec(mem, 0); err != nil {
		t.Fatal(err)
	}
	if le.Uint32(mem[ts1+support:]) != 0 || le.Uint32(mem[ts2+support:]) != 0 {
		t.Error("CancelRemoteExec left a pending call")
	}
	long := make([]byte, 600)
	for i := range long {
		long[i] = 'a'
	}
	if _, err := RemoteExec(mem, 0, string(long)); err == nil {
		t.Error("a path longer than the buffer was accepted")
	}
	le.PutUint32(mem[interpAt+enabledAt:], 0)
	if _, err := RemoteExec(mem, 0, "/tmp/x.py"); !errors.Is(err, ErrRemoteDebugDisabled) {
		t.Errorf("remote debugging off: %v", err)
	}
	// 3.13 has no remote execution.
	o13, _ := OffsetsFor(Version{3, 13, 0})
	if _, err := RemoteExec(fakeMem(fakeDebugOffsets(t, 13, o13, nil)), 0, "/tmp/x.py"); err == nil {
		t.Error("3.13: no error")
	}
}
