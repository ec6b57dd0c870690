package ksym

import (
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
)

// BatchSize is how many addresses one run of the program names.
const BatchSize = len(ksymKsymBatch{}.Addr)

// Resolver names kernel addresses. It is safe for concurrent use.
type Resolver struct {
	mu    sync.Mutex
	objs  ksymObjects
	batch ksymKsymBatch // reused: 16 KiB a run
}

// Open loads the lookup program.
func Open() (*Resolver, error) {
	r := &Resolver{}
	if err := loadKsymObjects(&r.objs, nil); err != nil {
		return nil, fmt.Errorf("load kernel symbol lookup: %w", err)
	}
	return r, nil
}

// Close unloads the program.
func (r *Resolver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.objs.Close()
}

// Names sets names[i] to the symbol holding addrs[i], as "name" or "name
// [module]", or "" when no symbol does. names must be as long as addrs.
func (r *Resolver) Names(addrs []uint64, names []string) error {
	if len(names) != len(addrs) {
		return fmt.Errorf("name kernel addresses: %d names for %d addresses", len(names), len(addrs))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(addrs) > 0 {
		n := min(len(addrs), BatchSize)
		if err := r.run(addrs[:n], names[:n]); err != nil {
			return err
		}
		addrs, names = addrs[n:], names[n:]
	}
	return nil
}

// run names one batch of at most BatchSize addresses.
func (r *Resolver) run(addrs []uint64, names []string) error {
	b := &r.batch
	copy(b.Addr[:], addrs)
	b.N = uint32(len(addrs))
	if err := r.objs.Batches.Update(uint32(0), b, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write kernel addresses to name: %w", err)
	}
	if _, err := r.objs.BprofKsym.Run(&ebpf.RunOptions{}); err != nil {
		return fmt.Errorf("run kernel symbol lookup: %w", err)
	}
	if err := r.objs.Batches.Lookup(uint32(0), b); err != nil {
		return fmt.Errorf("read kernel symbol names: %w", err)
	}
	for i := range addrs {
		names[i] = symbolName(b.Name[i][:], b.Len[i])
	}
	return nil
}
