package symbolize

import (
	"fmt"
	"slices"
	"sync"

	"github.com/bprof/bprof/pkg/ksym"
	"github.com/bprof/bprof/pkg/process"
)

// Kernel names kernel frames. It asks the kernel for each address it has
// not named before (pkg/ksym: a small BPF program, loaded at the first
// kernel frame to name), which costs a system call or three per batch of
// 64 new addresses. Where that program cannot load (before Linux 5.14), it
// reads /proc/kallsyms once, at the first kernel frame to name: ~70 ms of
// CPU and a 3.5 MB table; then a module loaded later shows its addresses
// under the nearest symbol known, or as [kernel]+0x... below the first. A
// Kernel is safe for concurrent use.
type Kernel struct {
	once     sync.Once
	resolver bool // try pkg/ksym first
	read     func() (*process.KernelSymbols, error)
	mod      *Module

	mu    sync.Mutex
	res   *ksym.Resolver         // nil: syms names frames
	syms  *process.KernelSymbols // nil if reading failed too
	names map[uint64]string      // by looked-up address, with res; "" for no symbol
	miss  []uint64               // scratch: addresses res is asked about
	found []string
}

// maxKernelNames bounds Kernel.names; when full it starts again. A kernel
// has ~120,000 functions, and a host's profiles meet a few thousand.
const maxKernelNames = 1 << 16

// kernelHalf is where x86-64 kernel addresses are: the bounds of the
// kernel's mapping when the kernel names frames itself.
const kernelHalf = 0xffff_8000_0000_0000

// NewKernel checks that /proc/kallsyms shows addresses, which needs root (or
// kernel.kptr_restrict=0); nothing is loaded or read before the first
// kernel frame to name.
func NewKernel() (*Kernel, error) {
	if err := process.CheckKallsyms(); err != nil {
		return nil, fmt.Errorf("load kernel symbols: %w", err)
	}
	return &Kernel{resolver: true, read: process.ReadKallsyms, mod: &Module{Path: "[kernel.kallsyms]"}}, nil
}

// NewKernelFrom returns a Kernel naming frames with syms.
func NewKernelFrom(syms *process.KernelSymbols) *Kernel {
	return &Kernel{read: func() (*process.KernelSymbols, error) { return syms, nil }, mod: &Module{Path: "[kernel.kallsyms]"}}
}

// Close unloads the lookup program, if it was loaded.
func (k *Kernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.res == nil {
		return nil
	}
	err := k.res.Close()
	k.res = nil
	return err
}

// load picks how frames are named the first time it is called. The
// module's bounds are set before any frame names it.
func (k *Kernel) load() {
	k.once.Do(func() {
		if k.resolver {
			if res, err := ksym.Open(); err == nil {
				k.res, k.names = res, map[uint64]string{}
				k.mod.Start, k.mod.Limit = kernelHalf, ^uint64(0)
				return
			}
		}
		syms, err := k.read()
		if err != nil {
			return // frames are named [kernel]+0x...
		}
		k.syms = syms
		lo, hi := syms.Bounds()
		k.mod.Start, k.mod.Limit = lo, max(hi+1, hi)
	})
}

// Symbolize appends one Frame per kernel address to dst, leaf first as
// given, and returns dst. Every address but the first is looked up at
// addr-1. Module symbols are named "name [module]".
func (k *Kernel) Symbolize(addrs []uint64, dst []Frame) []Frame {
	if len(addrs) == 0 {
		return dst
	}
	k.load()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.res != nil {
		k.askKernel(addrs)
	}
	for i, addr := range addrs {
		f := Frame{Kind: KindKernel, Module: k.mod, Addr: addr}
		var name, module string
		ok := false
		switch {
		case k.res != nil:
			name = k.names[lookupAddr(i, addr)]
			ok = name != ""
		case k.syms != nil:
			name, _, module, ok = k.syms.Lookup(lookupAddr(i, addr))
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

// askKernel names the addresses (as Symbolize looks them up) that names
// lacks. A failed lookup leaves them out, and they are named [kernel]+0x...
func (k *Kernel) askKernel(addrs []uint64) {
	k.miss = k.miss[:0]
	for i, addr := range addrs {
		a := lookupAddr(i, addr)
		if _, ok := k.names[a]; !ok && !slices.Contains(k.miss, a) {
			k.miss = append(k.miss, a)
		}
	}
	if len(k.miss) == 0 {
		return
	}
	if len(k.names)+len(k.miss) > maxKernelNames {
		clear(k.names)
	}
	k.found = slices.Grow(k.found[:0], len(k.miss))[:len(k.miss)]
	if err := k.res.Names(k.miss, k.found); err != nil {
		return
	}
	for i, a := range k.miss {
		k.names[a] = k.found[i]
	}
}
