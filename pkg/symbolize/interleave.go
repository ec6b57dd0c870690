package symbolize

import (
	"strings"

	"github.com/bprof/bprof/pkg/python"
)

// isEvalLoop reports whether a native frame is CPython's bytecode loop, the
// C function each group of Python frames runs in: by name (with the .cold
// part GCC splits out of it), or by address, for stripped interpreters.
func (pp *pyProc) isEvalLoop(f Frame) bool {
	if f.Kind != KindNative {
		return false
	}
	if name, ok := strings.CutPrefix(f.Name, "_PyEval_EvalFrameDefault"); ok && (name == "" || strings.HasPrefix(name, ".cold")) {
		return true
	}
	// A return address is past its call: compare the call's last byte.
	return f.Addr > pp.evalLo && f.Addr <= pp.evalHi && f.Module != nil && f.Module.Path == pp.path
}

// pyGroups splits Python frames (leaf first) into the runs that one C-level
// eval call each runs, leaf first: up to and including a frame marked Entry
// (3.11+), or one frame each before 3.11, where every Python call is a C
// call of the eval loop.
func pyGroups(py []python.FrameRef, perFrame bool, groups [][]python.FrameRef) [][]python.FrameRef {
	start := 0
	for i, f := range py {
		if perFrame || f.Entry {
			groups = append(groups, py[start:i+1])
			start = i + 1
		}
	}
	if start < len(py) {
		groups = append(groups, py[start:]) // a partial group: the walk stopped early
	}
	return groups
}

// interleaveEval puts each group of Python frames right leafward of the
// eval-loop frame that runs it, so that a stack reads, root to leaf,
// main → … → _PyEval_EvalFrameDefault → <module> → digest →
// _hashlib_HASH_digest → … → SHA256_Final. It reports false when the native
// stack holds no eval-loop frame (say its walk stopped early): the caller
// then falls back to appending the Python frames.
//
// Groups and eval frames are paired from the root when both walks are whole,
// and from the leaf otherwise, since each walk loses frames at the root end.
// The stack is built from out, which must not share frames' array.
func (p *Python) interleaveEval(pp *pyProc, frames []Frame, nat int, py []python.FrameRef, flags PyFlags, out []Frame) ([]Frame, bool) {
	var evalBuf [32]int
	evals := evalBuf[:0] // indexes into frames, leaf first
	for i := nat; i < len(frames); i++ {
		if pp.isEvalLoop(frames[i]) {
			evals = append(evals, i)
		}
	}
	if len(evals) == 0 {
		return nil, false
	}
	var groupBuf [32][]python.FrameRef
	groups := pyGroups(py, pp.interp.Version.Less(3, 11), groupBuf[:0])
	pyWhole := !flags.ReadError && !flags.Truncated
	// shift: group k goes with eval frame k+shift (both leaf first).
	shift := 0
	if pyWhole && flags.NativeComplete {
		shift = max(len(evals)-len(groups), 0)
	}
	out = append(out[:0], frames[:nat]...)
	lastPy := -1 // out index of the root-most Python frame
	e := 0       // eval frames passed so far, leaf first
	for i := nat; i < len(frames); i++ {
		if e < len(evals) && evals[e] == i {
			if k := e - shift; k >= 0 && k < len(groups) {
				n := len(out)
				for _, ref := range groups[k] {
					out = p.appendPyFrame(out, pp, ref, flags.SampledAt)
				}
				if len(out) > n {
					lastPy = len(out) - 1
				}
			}
			e++
		}
		out = append(out, frames[i])
	}
	// Groups with no eval frame left: the native walk stopped short of
	// them, so they go at the root end, as without unwind tables.
	for k := range groups {
		if e := k + shift; e >= len(evals) {
			n := len(out)
			for _, ref := range groups[k] {
				out = p.appendPyFrame(out, pp, ref, flags.SampledAt)
			}
			if len(out) > n {
				lastPy = len(out) - 1
			}
		}
	}
	// The Python walk lost the frames root-ward of its last one: say so there.
	var marker Frame
	switch {
	case flags.ReadError:
		marker = pseudo("[python stack unreadable]")
	case flags.Truncated:
		marker = pseudo("[truncated]")
	default:
		return out, true
	}
	out = append(out, Frame{})
	copy(out[lastPy+2:], out[lastPy+1:])
	out[lastPy+1] = marker
	return out, true
}
