package sampler

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// AddTarget starts sampling the threads of process pid (host PID namespace).
func (s *Sampler) AddTarget(pid int) error {
	if err := s.objs.Targets.Put(uint32(pid), uint32(1)); err != nil {
		return fmt.Errorf("add target %d: %w", pid, err)
	}
	return nil
}

// RemoveTarget stops sampling process pid and forgets its Python and
// off-CPU state (waits not yet taken with OffCPUTotals are dropped).
func (s *Sampler) RemoveTarget(pid int) error {
	var errs []error
	if err := s.objs.Targets.Delete(uint32(pid)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, fmt.Errorf("remove target %d: %w", pid, err))
	}
	if err := s.objs.PyProcs.Delete(uint32(pid)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, fmt.Errorf("remove Python target %d: %w", pid, err))
	}
	errs = append(errs, s.SetPythonThreads(pid, nil))
	errs = append(errs, s.forgetOffCPU(pid))
	errs = append(errs, s.forgetUnwind(pid))
	errs = append(errs, s.DetachAllocProbes(pid))
	return errors.Join(errs...)
}

// StopTargets stops sampling the processes, keeping their state for a last
// read (CloseOffCPU, OffCPUTotals); RemoveTarget drops it.
func (s *Sampler) StopTargets(pids []int) error {
	var errs []error
	for _, pid := range pids {
		if err := s.objs.Targets.Delete(uint32(pid)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("stop target %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// Targets lists the processes being sampled.
func (s *Sampler) Targets() ([]int, error) {
	var pids []int
	var key, val uint32
	it := s.objs.Targets.Iterate()
	for it.Next(&key, &val) {
		pids = append(pids, int(key))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	return pids, nil
}
