package sampler

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/link"
)

// AllocProbeSymbol is the allocation sampler's probe function
// (native/allocsampler): it is called with each sampled allocation.
const AllocProbeSymbol = "bprof_alloc_probe"

// AttachAllocProbes attaches the memory program to the probe function of
// the allocation sampler that process pid has loaded from library, a path
// this process can open that names the same file (/proc/PID/root/... works
// across mount namespaces). Only pid's hits are seen.
func (s *Sampler) AttachAllocProbes(pid int, library string) error {
	if !s.cfg.Memory {
		return errors.New("attach allocation probes: the sampler was created without Config.Memory")
	}
	ex, err := link.OpenExecutable(library)
	if err != nil {
		return fmt.Errorf("open allocation sampler of %d: %w", pid, err)
	}
	opts := &link.UprobeOptions{PID: pid}
	alloc, err := ex.Uprobe(AllocProbeSymbol, s.objs.BprofAlloc, opts)
	if err != nil {
		return privilegeError(fmt.Errorf("attach uprobe to %s in process %d: %w", AllocProbeSymbol, pid, err))
	}
	s.memMu.Lock()
	old := s.mem[pid]
	s.mem[pid] = []link.Link{alloc}
	s.memMu.Unlock()
	return closeLinks(old)
}

// DetachAllocProbes detaches the memory program from pid's sampler.
func (s *Sampler) DetachAllocProbes(pid int) error {
	s.memMu.Lock()
	old := s.mem[pid]
	delete(s.mem, pid)
	s.memMu.Unlock()
	return closeLinks(old)
}

func (s *Sampler) detachAllAllocProbes() error {
	s.memMu.Lock()
	all := s.mem
	s.mem = map[int][]link.Link{}
	s.memMu.Unlock()
	var errs []error
	for _, ls := range all {
		errs = append(errs, closeLinks(ls))
	}
	return errors.Join(errs...)
}

func closeLinks(ls []link.Link) error {
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}
