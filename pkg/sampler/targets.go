package sampler

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
)

// The targets map is a bitmap of tgids (maps.h): bit pid%64 of word pid/64.
// User space keeps the set and writes whole words, under targetsMu.

// maxPID is PID_MAX_LIMIT, the largest PID the bitmap holds.
const maxPID = 4 << 20

// AddTarget starts sampling the threads of process pid (host PID namespace).
func (s *Sampler) AddTarget(pid int) error {
	if pid <= 0 || pid >= maxPID {
		return fmt.Errorf("add target %d: not a PID", pid)
	}
	s.targetsMu.Lock()
	defer s.targetsMu.Unlock()
	s.targets[pid] = true
	if err := s.writeTargetWord(pid); err != nil {
		delete(s.targets, pid)
		return fmt.Errorf("add target %d: %w", pid, err)
	}
	return nil
}

// unsetTarget clears pid's bit. Called with targetsMu held.
func (s *Sampler) unsetTarget(pid int) error {
	if !s.targets[pid] {
		return nil
	}
	delete(s.targets, pid)
	return s.writeTargetWord(pid)
}

// writeTargetWord writes the word holding pid's bit from the set.
func (s *Sampler) writeTargetWord(pid int) error {
	word := uint32(pid / 64)
	var bits uint64
	for p := int(word) * 64; p < int(word+1)*64; p++ {
		if s.targets[p] {
			bits |= 1 << (p % 64)
		}
	}
	return s.objs.Targets.Put(word, bits)
}

// RemoveTarget stops sampling process pid and forgets its Python and
// off-CPU state (waits not yet taken with OffCPUTotals are dropped).
func (s *Sampler) RemoveTarget(pid int) error {
	var errs []error
	s.targetsMu.Lock()
	if err := s.unsetTarget(pid); err != nil {
		errs = append(errs, fmt.Errorf("remove target %d: %w", pid, err))
	}
	s.targetsMu.Unlock()
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
	s.targetsMu.Lock()
	defer s.targetsMu.Unlock()
	var errs []error
	for _, pid := range pids {
		if err := s.unsetTarget(pid); err != nil {
			errs = append(errs, fmt.Errorf("stop target %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// Targets lists the processes being sampled, in order.
func (s *Sampler) Targets() ([]int, error) {
	s.targetsMu.Lock()
	defer s.targetsMu.Unlock()
	pids := make([]int, 0, len(s.targets))
	for pid := range s.targets {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids, nil
}
