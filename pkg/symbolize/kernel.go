package symbolize

import (
	"fmt"
	"sync"

	"github.com/bprof/bprof/pkg/process"
)

// Kernel names kernel frames through /proc/kallsyms, read once, when the
// first kernel frame is named: reading and parsing it costs ~50 ms of CPU,
// which need not stand between bprof's start and its first sample (a
// profile of code that never enters the kernel never needs it). A module
// loaded later shows its addresses under the nearest symbol known, or as
// [kernel]+0x... below the first. A Kernel is safe for concurrent use.
type Kernel struct {
	once sync.Once
	read func() (*process.KernelSymbols, error)
	syms *process.KernelSymbols // nil if reading failed
	mod  *Module
}

// NewKernel checks that /proc/kallsyms shows addresses, which needs root (or
// kernel.kptr_restrict=0); the symbols are read on first use.
func NewKernel() (*Kernel, error) {
	if err := process.CheckKallsyms(); err != nil {
		return nil, fmt.Errorf("load kernel symbols: %w", err)
	}
	return &Kernel{read: process.ReadKallsyms, mod: &Module{Path: "[kernel.kallsyms]"}}, nil
}

// NewKernelFrom returns a Kernel naming frames with syms.
func NewKernelFrom(syms *process.KernelSymbols) *Kernel {
	return &Kernel{read: func() (*process.KernelSymbols, error) { return syms, nil }, mod: &Module{Path: "[kernel.kallsyms]"}}
}

// load reads the symbols the first time it is called. The module's bounds
// are set before any frame names it.
func (k *Kernel) load() *process.KernelSymbols {
	k.once.Do(func() {
		syms, err := k.read()
		if err != nil {
			return // frames are named [kernel]+0x...
		}
		k.syms = syms
		lo, hi := syms.Bounds()
		k.mod.Start, k.mod.Limit = lo, max(hi+1, hi)
	})
	return k.syms
}

// Symbolize appends one Frame per kernel address to dst, leaf first as
// given, and returns dst. Every address but the first is looked up at
// addr-1. Module symbols are named "name [module]".
func (k *Kernel) Symbolize(addrs []uint64, dst []Frame) []Frame {
	if len(addrs) == 0 {
		return dst
	}
	syms := k.load()
	for i, addr := range addrs {
		f := Frame{Kind: KindKernel, Module: k.mod, Addr: addr}
		var name, module string
		ok := false
		if syms != nil {
			name, _, module, ok = syms.Lookup(lookupAddr(i, addr))
		}
		switch {
		case !ok:
			f.Name = fmt.Sprintf("[kernel]+%#x", addr)
		case module != "":
			f.Name = name + " [" + module + "]"
		default:
			f.Name = name
		}
		dst = append(dst, f)
	}
	return dst
}
