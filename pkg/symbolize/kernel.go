package symbolize

import (
	"fmt"

	"github.com/bprof/bprof/pkg/process"
)

// Kernel names kernel frames through /proc/kallsyms, read once. A module
// loaded later shows its addresses under the nearest symbol known, or as
// [kernel]+0x... below the first. A Kernel is immutable and safe for
// concurrent use.
type Kernel struct {
	syms *process.KernelSymbols
	mod  *Module
}

// NewKernel reads /proc/kallsyms. It needs root (or kernel.kptr_restrict=0)
// to see addresses.
func NewKernel() (*Kernel, error) {
	syms, err := process.ReadKallsyms()
	if err != nil {
		return nil, fmt.Errorf("load kernel symbols: %w", err)
	}
	return NewKernelFrom(syms), nil
}

// NewKernelFrom returns a Kernel naming frames with syms.
func NewKernelFrom(syms *process.KernelSymbols) *Kernel {
	lo, hi := syms.Bounds()
	return &Kernel{syms: syms, mod: &Module{Path: "[kernel.kallsyms]", Start: lo, Limit: max(hi+1, hi)}}
}

// Symbolize appends one Frame per kernel address to dst, leaf first as
// given, and returns dst. Every address but the first is looked up at
// addr-1. Module symbols are named "name [module]".
func (k *Kernel) Symbolize(addrs []uint64, dst []Frame) []Frame {
	for i, addr := range addrs {
		f := Frame{Kind: KindKernel, Module: k.mod, Addr: addr}
		name, _, module, ok := k.syms.Lookup(lookupAddr(i, addr))
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
