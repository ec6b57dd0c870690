package sampler

import (
	"errors"
	"fmt"
	"maps"

	"github.com/bprof/bprof/pkg/python"
	"github.com/cilium/ebpf"
)

// PyLayout tells the BPF walker where one CPython version keeps what it reads.
// Offsets are in bytes; -1 means the version has no such field.
type PyLayout struct {
	TstateFrame   int16 // <=3.10 tstate->frame, 3.11/3.12 tstate->cframe, 3.13+ tstate->current_frame
	CframeCurrent int16 // 3.11/3.12 cframe->current_frame, else -1
	FrameCode     int16
	FramePrevious int16
	FrameInstr    int16
	FrameOwner    int16 // -1 before 3.11
	CodeAdaptive  int16 // 3.11+ co_code_adaptive, else -1
	CodeCheck     int16 // 8 bytes of the code object compared by user space
	FrameIsEntry  int16 // 3.11 is_entry, else -1
	FrameSize     uint16
	InstrIsPtr    bool
	CodeTagMask   uint8
	SkipOwner     uint8 // owner value of C-stack shim frames; 0xff for none
}

// SetPython registers pid as a CPython process laid out as l. Threads are
// walked once SetPythonThreads has told the sampler their thread states.
func (s *Sampler) SetPython(pid int, l PyLayout) error {
	if l.FrameSize == 0 || l.FrameSize > 128 {
		return fmt.Errorf("set Python layout of %d: frame size %d outside 1..128", pid, l.FrameSize)
	}
	p := profilePyProc{Off: profilePyOffsets{
		TstateFrame:   l.TstateFrame,
		CframeCurrent: l.CframeCurrent,
		FrameCode:     l.FrameCode,
		FramePrevious: l.FramePrevious,
		FrameInstr:    l.FrameInstr,
		FrameOwner:    l.FrameOwner,
		CodeAdaptive:  l.CodeAdaptive,
		CodeCheck:     l.CodeCheck,
		FrameIsEntry:  l.FrameIsEntry,
		FrameSize:     l.FrameSize,
		CodeTagMask:   l.CodeTagMask,
		SkipOwner:     l.SkipOwner,
	}}
	if l.InstrIsPtr {
		p.Off.InstrIsPtr = 1
	}
	if err := s.objs.PyProcs.Put(uint32(pid), &p); err != nil {
		return fmt.Errorf("set Python layout of %d: %w", pid, err)
	}
	return nil
}

// SetPythonThreads replaces the thread states known for pid: threads maps each
// thread's pointer (fsbase, = PyThreadState.thread_id) to its PyThreadState
// address. A nil map forgets them all.
func (s *Sampler) SetPythonThreads(pid int, threads map[uint64]uint64) error {
	threads = maps.Clone(threads)
	var errs []error
	var key profilePyThreadKey
	var val uint64
	var stale []profilePyThreadKey
	it := s.objs.PyThreads.Iterate()
	for it.Next(&key, &val) {
		if key.Pid != uint32(pid) {
			continue
		}
		if ts, ok := threads[key.Fsbase]; ok && ts == val {
			delete(threads, key.Fsbase) // already there
			continue
		}
		stale = append(stale, key)
	}
	if err := it.Err(); err != nil {
		errs = append(errs, fmt.Errorf("list Python threads of %d: %w", pid, err))
	}
	for _, k := range stale {
		if err := s.objs.PyThreads.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("forget Python thread of %d: %w", pid, err))
		}
	}
	for fs, ts := range threads {
		k := profilePyThreadKey{Pid: uint32(pid), Fsbase: fs}
		if err := s.objs.PyThreads.Put(&k, ts); err != nil {
			errs = append(errs, fmt.Errorf("set Python thread of %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// LayoutFor derives what the BPF walker needs from a CPython offsets row.
func LayoutFor(o *python.Offsets) (PyLayout, error) {
	l := PyLayout{
		CframeCurrent: -1,
		FrameCode:     int16(o.FrameCode),
		FramePrevious: int16(o.FramePrevious),
		FrameInstr:    int16(o.FrameInstr),
		FrameOwner:    int16(o.FrameOwner),
		CodeAdaptive:  int16(o.CodeAdaptive),
		CodeCheck:     int16(o.CheckOffset),
		FrameIsEntry:  int16(o.FrameIsEntry),
		SkipOwner:     0xff,
	}
	switch {
	case o.TstateFrame != python.Absent:
		l.TstateFrame = int16(o.TstateFrame)
	case o.TstateCframe != python.Absent:
		l.TstateFrame = int16(o.TstateCframe)
		l.CframeCurrent = int16(o.CframeCurrentFrame)
	default:
		l.TstateFrame = int16(o.TstateCurrentFrame)
	}
	if o.OwnerShimMin != python.Absent {
		l.SkipOwner = uint8(o.OwnerShimMin)
	}
	if o.TaggedExecutable {
		l.CodeTagMask = 7
	}
	l.InstrIsPtr = o.InstrKind == python.InstrPrevPtr || o.InstrKind == python.InstrPtr
	// The walker reads pointer-sized fields as aligned words of one frame buffer.
	end := 0
	for _, f := range []struct {
		name string
		off  int
	}{{"code", o.FrameCode}, {"previous", o.FramePrevious}, {"instruction", o.FrameInstr}} {
		if f.off < 0 || f.off%8 != 0 || f.off+8 > 128 {
			return l, fmt.Errorf("python layout: frame %s field at %d is not an aligned word within 128 bytes", f.name, f.off)
		}
		end = max(end, f.off+8)
	}
	if o.FrameOwner >= 0 {
		end = max(end, o.FrameOwner+1)
	}
	if o.FrameIsEntry >= 0 {
		end = max(end, o.FrameIsEntry+1)
	}
	l.FrameSize = uint16((end + 7) &^ 7)
	return l, nil
}
