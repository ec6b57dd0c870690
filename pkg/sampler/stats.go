package sampler

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Stats are the BPF programs' counters, summed over CPUs since load.
type Stats struct {
	Samples           uint64 // ticks that landed on target threads
	RingFull          uint64 // samples lost because the ring buffer was full
	KernelStackErrors uint64
	UserStackErrors   uint64
	PyReadErrors      uint64 // Python walks cut short by an unreadable frame
	PyTruncated       uint64 // Python stacks deeper than the walk's limit
	PyUnknownThreads  uint64 // samples of Python threads with no known thread state
	ThreadRefreshes   uint64 // requests to user space to re-read thread states
	OffCPULost        uint64 // off-CPU intervals not recorded: a map was full
	Switches          uint64 // context switches of target threads seen
	OffCPUNoSlot      uint64 // wait stacks not kept: the kernel refused the update
	WaitCached        uint64 // switch-outs whose stack was already kept for their wait site
	WaitCaptured      uint64 // switch-outs whose stack was walked and kept
	WaitUncaptured    uint64 // switch-outs with no stack: the thread was out of capture tokens
	UnwindNoTable     uint64 // native frames in a file with no unwind table loaded (frame-pointer fallback)
	UnwindNoMapping   uint64 // native walks that reached an address in no known mapping
	UnwindUnsupported uint64 // native frames whose unwind rule the kernel side cannot follow (fallback)
	UnwindTruncated   uint64 // native walks stopped by the frame limit
	MapsRefreshes     uint64 // requests to user space to re-read a target's mappings
	SwitchUnseen      uint64 // switches of target threads the tracepoint never showed (found and split by run time)
	Allocs            uint64 // sampled allocations seen (memory profiles)
	MemLost           uint64 // of those, not delivered: ring buffer full (also in RingFull) or scratch busy
	ScratchBusy       uint64 // samples not taken: a preempted memory program held the CPU's scratch
	WaitSpilled       uint64 // waits summed in the shared wait table: the thread's own slots were in use
}

// Lost is the number of samples taken but not delivered.
func (st Stats) Lost() uint64 { return st.RingFull + st.OffCPULost }

// Stats reads the counters.
func (s *Sampler) Stats() (Stats, error) {
	var st Stats
	fields := []*uint64{
		&st.Samples, &st.RingFull, &st.KernelStackErrors, &st.UserStackErrors,
		&st.PyReadErrors, &st.PyTruncated, &st.PyUnknownThreads, &st.ThreadRefreshes,
		&st.OffCPULost, &st.Switches, &st.OffCPUNoSlot, &st.WaitCached, &st.WaitCaptured, &st.WaitUncaptured,
		&st.UnwindNoTable, &st.UnwindNoMapping, &st.UnwindUnsupported, &st.UnwindTruncated, &st.MapsRefreshes, &st.SwitchUnseen,
		&st.Allocs, &st.MemLost, &st.ScratchBusy, &st.WaitSpilled,
	}
	if int(s.objs.Stats.MaxEntries()) != len(fields) {
		return st, fmt.Errorf("read stats: BPF has %d counters, Go knows %d", s.objs.Stats.MaxEntries(), len(fields))
	}
	var perCPU []uint64
	for i, f := range fields {
		if err := s.objs.Stats.Lookup(uint32(i), &perCPU); err != nil {
			return st, fmt.Errorf("read stats counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			*f += v
		}
	}
	return st, nil
}

// ProgramStats returns the kernel's run count and run time of each loaded
// program, by name. The kernel counts them only while BPF statistics are on
// (sysctl kernel.bpf_stats_enabled=1, or ebpf.EnableStats).
func (s *Sampler) ProgramStats() (map[string]*ebpf.ProgramStats, error) {
	out := map[string]*ebpf.ProgramStats{}
	progs := map[string]*ebpf.Program{"bprof_cpu": s.objs.BprofCpu, "bprof_switch": s.objs.BprofSwitch, "bprof_alloc": s.objs.BprofAlloc}
	for name, p := range progs {
		if p == nil { // not loaded: the configuration does not need it
			continue
		}
		st, err := p.Stats()
		if err != nil {
			return nil, fmt.Errorf("read run time of %s: %w", name, err)
		}
		out[name] = st
	}
	return out, nil
}
