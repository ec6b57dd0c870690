package python

import (
	"fmt"
	"io"
)

// FrameRef is what the walker records for one Python frame.
type FrameRef struct {
	Code  uint64 // the code object
	Instr int32  // instruction offset, as Line expects it for the version
	Check uint64 // 8 bytes of the code object at Offsets.CheckOffset
	// Entry marks the root-most frame that its C-level eval call runs
	// (3.11+; set by the BPF walker). Before 3.11 every frame is one.
	Entry bool
	// Cached: the walker took Check from its cache of recent code objects,
	// not from the object, so for up to 250 ms after the object was freed
	// and another allocated at its address, Check is the old object's.
	Cached bool
	shim   bool // readFrame: an entry shim, skipped
}

// Stack walks the frames of the thread state at tstate, innermost first, at
// most max of them, exactly as the BPF walker does:
//
//  1. The innermost frame is tstate->frame (≤3.10),
//     tstate->cframe->current_frame (3.11, 3.12) or tstate->current_frame
//     (3.13+). Each step follows f_back or previous until NULL.
//  2. 3.14: f_executable is a tagged reference; clear the low 3 bits.
//  3. 3.12+: skip frames whose owner is at least OwnerShimMin: the
//     interpreter's entry frames, which run no Python code.
//  4. Skip frames whose code pointer is NULL or, when the PyCode_Type
//     address is known, whose ob_type is not PyCode_Type (3.13+ entry
//     frames hold None).
//  5. 3.11+: the instruction offset is ptr − (code + CodeAdaptive) in bytes;
//     skip incomplete frames (not owned by a generator and offset below
//     2·_co_firsttraceable), as CPython hides them too. ≤3.10: f_lasti.
//  6. Record the code address, the offset and the 8-byte check value.
//
// Skipped frames do not count toward max, but the walk stops after
// 4·max+16 steps whatever happens. A read error ends the walk and is returned
// with the frames found so far.
func (in *Interpreter) Stack(mem io.ReaderAt, tstate uint64, max int) ([]FrameRef, error) {
	frames, err := in.stack(mem, tstate, max)
	if err != nil {
		return frames, fmt.Errorf("walk python stack of thread state %#x: %w", tstate, err)
	}
	return frames, nil
}

func (in *Interpreter) stack(mem io.ReaderAt, tstate uint64, max int) ([]FrameRef, error) {
	o := in.Offsets
	frame, err := in.currentFrame(mem, tstate)
	if err != nil {
		return nil, err
	}
	var out []FrameRef
	for steps := 0; frame != 0 && len(out) < max && steps < 4*max+16; steps++ {
		ref, ok, prev, err := in.readFrame(mem, o, frame)
		if err != nil {
			return out, fmt.Errorf("frame at %#x: %w", frame, err)
		}
		if ok {
			out = append(out, ref)
		} else if ref.shim && len(out) > 0 {
			// 3.12+: the frame just leaf-ward of an entry shim is the
			// first its eval call ran, as the BPF walker marks it.
			out[len(out)-1].Entry = true
		}
		frame = prev
	}
	return out, nil
}

func (in *Interpreter) currentFrame(mem io.ReaderAt, tstate uint64) (uint64, error) {
	o := in.Offsets
	switch {
	case o.TstateFrame != Absent:
		return readU64(mem, at(tstate, o.TstateFrame))
	case o.TstateCframe != Absent:
		cframe, err := readU64(mem, at(tstate, o.TstateCframe))
		if err != nil || cframe == 0 {
			return 0, err
		}
		return readU64(mem, at(cframe, o.CframeCurrentFrame))
	default:
		return readU64(mem, at(tstate, o.TstateCurrentFrame))
	}
}

// readFrame reads one frame; ok is false for a frame to skip.
func (in *Interpreter) readFrame(mem io.ReaderAt, o *Offsets, frame uint64) (ref FrameRef, ok bool, prev uint64, err error) {
	if prev, err = readU64(mem, at(frame, o.FramePrevious)); err != nil {
		return ref, false, 0, err
	}
	code, err := readU64(mem, at(frame, o.FrameCode))
	if err != nil {
		return ref, false, prev, err
	}
	if o.TaggedExecutable {
		code &^= 7
	}
	owner := -1
	if o.FrameOwner != Absent {
		b, err := readU8(mem, at(frame, o.FrameOwner))
		if err != nil {
			return ref, false, prev, err
		}
		owner = int(int8(b))
	}
	if o.OwnerShimMin != Absent && owner >= o.OwnerShimMin || code == 0 {
		ref.shim = o.OwnerShimMin != Absent && owner >= o.OwnerShimMin
		return ref, false, prev, nil
	}
	if in.CodeType != 0 {
		typ, err := readU64(mem, at(code, o.ObType))
		if err != nil {
			return ref, false, prev, err
		}
		if typ != in.CodeType {
			return ref, false, prev, nil
		}
	}
	ref.Code = code
	switch {
	case o.FrameKind == FrameObjectKind:
		ref.Entry = true // before 3.11 every frame is its own eval call
	case o.FrameIsEntry != Absent:
		b, err := readU8(mem, at(frame, o.FrameIsEntry))
		if err != nil {
			return ref, false, prev, err
		}
		ref.Entry = b != 0
	}
	if o.FrameKind == FrameObjectKind {
		lasti, err := readI32(mem, at(frame, o.FrameInstr))
		if err != nil {
			return ref, false, prev, err
		}
		ref.Instr = lasti
	} else {
		ptr, err := readU64(mem, at(frame, o.FrameInstr))
		if err != nil {
			return ref, false, prev, err
		}
		off := int64(ptr - (code + uint64(o.CodeAdaptive)))
		if off < -2 || off > 1<<30 {
			return ref, false, prev, fmt.Errorf("instruction pointer %#x outside code object at %#x", ptr, code)
		}
		ref.Instr = int32(off)
		if owner != o.OwnerGenerator {
			first, err := readI32(mem, at(code, o.CodeFirstTraceable))
			if err != nil {
				return ref, false, prev, err
			}
			if off < 2*int64(first) {
				return ref, false, prev, nil
			}
		}
	}
	if ref.Check, err = readU64(mem, at(code, o.CheckOffset)); err != nil {
		return ref, false, prev, err
	}
	return ref, true, prev, nil
}
