package dump

import (
	"debug/elf"

	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/bprof/bprof/pkg/unwind"
)

// maxFrames bounds a native walk, like the BPF walker's 127 steps.
const maxFrames = 128

// unwinder walks the user stacks of one process from a saved stack pointer
// and program counter, with each file's unwind rows, parsed once a dump.
type unwinder struct {
	pid    int
	native *symbolize.Native
	mem    *process.Memory
	tables map[string]*unwind.Table // by mapped path; nil: the file has none
}

func newUnwinder(pid int, native *symbolize.Native) *unwinder {
	return &unwinder{pid: pid, native: native, mem: process.NewMemory(pid), tables: map[string]*unwind.Table{}}
}

func (u *unwinder) close() { u.mem.Close() }

// stack returns the named frames from pc up, leaf first. The walk stops
// where a rule needs rbp before a frame restored it (the saved registers
// give only rsp and rip), where a file has no rows, or at the outermost
// frame; what it found so far is kept.
func (u *unwinder) stack(pc, sp uint64) []symbolize.Frame {
	addrs := []uint64{pc}
	var rbp uint64
	haveRBP := false
	for len(addrs) < maxFrames {
		look := pc
		if len(addrs) > 1 {
			look = pc - 1 // a return address: the call is the instruction before it
		}
		row, ok := u.row(look)
		if !ok {
			break
		}
		var cfa uint64
		switch row.Kind {
		case unwind.KindRSP:
			cfa = sp + uint64(int64(row.CFAOffset))
		case unwind.KindRBP:
			if !haveRBP {
				return u.name(addrs)
			}
			cfa = rbp + uint64(int64(row.CFAOffset))
		case unwind.KindPLT:
			cfa = sp + 8
			if int32(pc&15) >= row.CFAOffset {
				cfa += 8
			}
		default: // the outermost frame, a signal frame, no rule, one we cannot follow
			return u.name(addrs)
		}
		ra, err := u.mem.Uint64(cfa - 8)
		if err != nil || ra == 0 {
			break
		}
		if row.RBPOffset != 0 {
			if rbp, err = u.mem.Uint64(cfa + uint64(int64(row.RBPOffset))); err != nil {
				break
			}
			haveRBP = true
		}
		if cfa <= sp {
			break // a stack grows down: the caller's frame is above
		}
		pc, sp = ra, cfa
		addrs = append(addrs, pc)
	}
	return u.name(addrs)
}

func (u *unwinder) name(addrs []uint64) []symbolize.Frame {
	return u.native.Symbolize(u.pid, addrs, nil)
}

// row finds the unwind row of address look.
func (u *unwinder) row(look uint64) (unwind.Row, bool) {
	m, bin, ok := u.native.Mapping(u.pid, look)
	if !ok || bin == nil {
		return unwind.Row{}, false
	}
	t, seen := u.tables[m.Path]
	if !seen {
		t = u.load(m)
		u.tables[m.Path] = t
	}
	if t == nil {
		return unwind.Row{}, false
	}
	bias, err := bin.Bias(m)
	if err != nil {
		return unwind.Row{}, false
	}
	return t.Find(look - bias)
}

func (u *unwinder) load(m process.Mapping) *unwind.Table {
	f, err := process.OpenMapped(u.pid, m)
	if err != nil {
		return nil
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil
	}
	t, err := unwind.Parse(ef)
	if err != nil {
		return nil
	}
	return t
}
