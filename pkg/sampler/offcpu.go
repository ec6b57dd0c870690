package sampler

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// OffCPUKind says why off-CPU time was summed rather than sent as a sample.
type OffCPUKind uint32

const (
	OffCPUShort      OffCPUKind = 0 // waits shorter than Config.MinOffCPU
	OffCPUUncaptured OffCPUKind = 1 // long waits whose stack was not captured (rate limit)
	OffCPUBefore     OffCPUKind = 2 // time off CPU since before the recording began
	OffCPUWhole      OffCPUKind = 3 // (user space) blocked for the whole recording
)

// OffCPUTotal is off-CPU time of one thread that came without a stack.
type OffCPUTotal struct {
	PID, TID int
	Kind     OffCPUKind
	NS       uint64
	Count    uint64
}

// Monotonic is the kernel's CLOCK_MONOTONIC now, the clock of Sample.Time.
func Monotonic() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

func (s *Sampler) startOffCPU() error {
	if err := s.objs.OffcpuEpoch.Put(uint32(0), Monotonic()); err != nil {
		return fmt.Errorf("start off-CPU recording: %w", err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: s.objs.BprofSwitch})
	if err != nil {
		return fmt.Errorf("attach %s to sched_switch: %w", s.objs.BprofSwitch, err)
	}
	s.sched = l
	return nil
}

// OffCPUTotals takes the off-CPU time summed per thread since the last call.
func (s *Sampler) OffCPUTotals() ([]OffCPUTotal, error) {
	out, err := s.shortWaits()
	if err != nil {
		return nil, err
	}
	var key profileOffcpuKey
	var val profileOffcpuTotal
	var keys []profileOffcpuKey
	it := s.objs.OffcpuTotals.Iterate()
	for it.Next(&key, &val) {
		keys = append(keys, key)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read off-CPU totals: %w", err)
	}
	for _, k := range keys {
		// Lookup and delete is one step, so the kernel's later additions go to a
		// new entry instead of being lost between a read and a delete.
		if err := s.objs.OffcpuTotals.LookupAndDelete(&k, &val); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return out, fmt.Errorf("take off-CPU total of thread %d: %w", k.Tid, err)
		}
		out = append(out, OffCPUTotal{PID: int(val.Pid), TID: int(k.Tid), Kind: OffCPUKind(k.Kind), NS: val.Ns, Count: val.Count})
	}
	return out, nil
}

// shortWaits reads the short waits each thread's entry sums. The kernel only
// adds to them (one writer, the CPU the thread switches on), so what is new
// is the difference from the last read.
func (s *Sampler) shortWaits() ([]OffCPUTotal, error) {
	s.shortMu.Lock()
	defer s.shortMu.Unlock()
	var out []OffCPUTotal
	var tid uint32
	var st profileOffcpuState
	it := s.objs.OffcpuThreads.Iterate()
	for it.Next(&tid, &st) {
		last := s.short[tid]
		if st.ShortNs > last.ns {
			out = append(out, OffCPUTotal{PID: int(st.Pid), TID: int(tid), Kind: OffCPUShort,
				NS: st.ShortNs - last.ns, Count: st.ShortCount - last.count})
			s.short[tid] = shortSeen{st.ShortNs, st.ShortCount}
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read short waits: %w", err)
	}
	return out, nil
}

// shortSeen is what shortWaits last read of one thread.
type shortSeen struct{ ns, count uint64 }

// CloseOffCPU ends, at now (Monotonic), the waits of target threads still off
// the CPU: those with a captured stack come back as samples, the others as
// totals. It also reports every thread it has seen switch.
func (s *Sampler) CloseOffCPU(now uint64) (samples []Sample, totals []OffCPUTotal, seen map[int]bool, err error) {
	seen = map[int]bool{}
	var tid uint32
	var st profileOffcpuState
	type open struct {
		tid uint32
		st  profileOffcpuState
	}
	var opens []open
	it := s.objs.OffcpuThreads.Iterate()
	for it.Next(&tid, &st) {
		seen[int(tid)] = true
		if st.Start != 0 && st.Start < now {
			opens = append(opens, open{tid, st})
		}
	}
	if err := it.Err(); err != nil {
		return nil, nil, seen, fmt.Errorf("read off-CPU threads: %w", err)
	}
	raw := make([]byte, s.objs.OffcpuStacks.ValueSize())
	for _, o := range opens {
		d := now - o.st.Start
		o.st.Start = 0
		s.objs.OffcpuThreads.Update(o.tid, &o.st, ebpf.UpdateExist)
		if o.st.Captured != 0 {
			if err := s.objs.OffcpuStacks.Lookup(o.tid, &raw); err == nil {
				if smp, err := Decode(raw); err == nil {
					smp.Kind, smp.Value, smp.Time, smp.State = KindOffCPU, d, now, o.st.State
					samples = append(samples, smp)
					continue
				}
			}
		}
		totals = append(totals, OffCPUTotal{PID: int(o.st.Pid), TID: int(o.tid), Kind: OffCPUUncaptured, NS: d, Count: 1})
	}
	return samples, totals, seen, nil
}

// OffCPUStart is when off-CPU recording began (Monotonic), 0 if it is off.
func (s *Sampler) OffCPUStart() uint64 {
	var v uint64
	if s.sched == nil || s.objs.OffcpuEpoch.Lookup(uint32(0), &v) != nil {
		return 0
	}
	return v
}

// forgetOffCPU drops the off-CPU state of pid's threads: a removed target's
// waits belong to no profile any more.
func (s *Sampler) forgetOffCPU(pid int) error {
	var errs []error
	var tid uint32
	var st profileOffcpuState
	var tids []uint32
	it := s.objs.OffcpuThreads.Iterate()
	for it.Next(&tid, &st) {
		if st.Pid == uint32(pid) {
			tids = append(tids, tid)
		}
	}
	errs = append(errs, it.Err())
	s.shortMu.Lock()
	for _, t := range tids {
		delete(s.short, t)
	}
	s.shortMu.Unlock()
	for _, t := range tids {
		if err := s.objs.OffcpuThreads.Delete(t); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
		if err := s.objs.OffcpuStacks.Delete(t); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	var key profileOffcpuKey
	var val profileOffcpuTotal
	var keys []profileOffcpuKey
	tt := s.objs.OffcpuTotals.Iterate()
	for tt.Next(&key, &val) {
		if val.Pid == uint32(pid) {
			keys = append(keys, key)
		}
	}
	errs = append(errs, tt.Err())
	for _, k := range keys {
		if err := s.objs.OffcpuTotals.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("forget off-CPU state of %d: %w", pid, err)
	}
	return nil
}
