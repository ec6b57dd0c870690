package sampler

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Where a wait's stack is (WaitTotal.Site): one of these, or a key of the
// kernel's wait_stacks map, which WaitStack reads.
const (
	SiteUncaptured uint64 = 0 // no stack: the thread was out of capture tokens
	SiteAtAdd      uint64 = 1 // blocked when its process was added: the caller's snapshot
)

// WaitTotal is off-CPU time of one thread at one wait site in one state,
// summed over a period. Count is the number of waits that ended in it.
type WaitTotal struct {
	PID, TID int
	State    uint32 // 0 sleep, 1 runqueue
	Site     uint64
	NS       uint64
	Count    uint64
}

// Period is what a period measured besides its CPU samples: every wait
// and every thread's exact time on the CPU.
type Period struct {
	Waits []WaitTotal
	OnCPU []ThreadTime // each thread's time on the CPU
}

// ThreadTime is a thread's time on the CPU in a period.
type ThreadTime struct {
	PID, TID int
	NS       uint64
}

// Monotonic is the kernel's CLOCK_MONOTONIC now, the clock of Sample.Time.
func Monotonic() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

func (s *Sampler) startOffCPU() error {
	l, err := link.AttachTracing(link.TracingOptions{Program: s.objs.BprofSwitch})
	if err != nil {
		return fmt.Errorf("attach %s to sched_switch: %w", s.objs.BprofSwitch, err)
	}
	s.sched = l
	return nil
}

// BeginPeriod starts the first period at now (Monotonic): the kernel counts
// no time before it. Later periods begin where EndPeriod ends one.
func (s *Sampler) BeginPeriod(now uint64) error {
	s.periodMu.Lock()
	defer s.periodMu.Unlock()
	return s.setEpoch(now)
}

func (s *Sampler) setEpoch(now uint64) error {
	if s.sched == nil {
		return nil
	}
	if err := s.objs.OffcpuEpoch.Put(epochStart, now); err != nil {
		return fmt.Errorf("start off-CPU period: %w", err)
	}
	s.epoch = now
	return nil
}

// Words of the kernel's offcpu_epoch map (EPOCH_START and EPOCH_TAKEN in
// bpf/offcpu.h).
const (
	epochStart uint32 = 0 // the current period's start
	epochTaken uint32 = 1 // the start of the last period whose wait slots are read
)

// ThreadAtAdd is a thread of a process being added, as /proc shows it.
type ThreadAtAdd struct {
	TID     int
	Blocked bool   // state S or D: waiting since before now
	RunTime uint64 // ns on a CPU so far (schedstat): where the kernel's count starts
}

// StartThreads gives the threads of pid, just added, their state at now: a
// blocked thread waits from now (SiteAtAdd), any other runs from now. A
// thread the kernel has seen switch since keeps what the kernel knows.
func (s *Sampler) StartThreads(pid int, threads []ThreadAtAdd, now uint64) error {
	if s.sched == nil {
		return nil
	}
	var errs []error
	s.periodMu.Lock()
	if s.forgotten[uint32(pid)] {
		// Added again (or its PID reused) before its old state went: drop
		// it now, or EndPeriod would take the new process's for the old's.
		errs = append(errs, s.dropForgotten())
	}
	s.periodMu.Unlock()
	for _, t := range threads {
		st := profileOffcpuState{Pid: uint32(pid), Tokens: captureBurst, LastRefill: now, Runtime: t.RunTime}
		if t.Blocked {
			st.Start, st.Site = now, SiteAtAdd
		} else {
			st.OncpuSince = now
		}
		err := s.objs.OffcpuThreads.Update(uint32(t.TID), &st, ebpf.UpdateNoExist)
		if errors.Is(err, ebpf.ErrKeyExist) {
			// Kept if it is this process's: the kernel saw the thread
			// switch since. Another process's (a removed target's thread
			// whose TID was reused) gives way.
			var old profileOffcpuState
			if s.objs.OffcpuThreads.Lookup(uint32(t.TID), &old) == nil && old.Pid != uint32(pid) {
				err = s.objs.OffcpuThreads.Update(uint32(t.TID), &st, ebpf.UpdateAny)
			} else {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("start off-CPU accounting of %d: %w", pid, err)
	}
	return nil
}

// captureBurst is CAPTURE_BURST in bpf/offcpu.h.
const captureBurst = 20

// EndPeriod ends the current period at now (Monotonic) and begins the next:
// it returns the waits summed in the kernel, the part before now of the
// waits still open, and each thread's time on the CPU, the part before now of
// the runs still going included. Threads that exited are forgotten.
func (s *Sampler) EndPeriod(now uint64) (Period, error) {
	var p Period
	if s.sched == nil {
		return p, nil
	}
	s.periodMu.Lock()
	defer s.periodMu.Unlock()
	prev := s.epoch
	// The kernel counts from the new epoch on; what is older is taken here.
	if err := s.setEpoch(now); err != nil {
		return p, err
	}
	var errs []error
	var tid uint32
	var st profileOffcpuState
	var dead []uint32
	it := s.objs.OffcpuThreads.Iterate()
	for it.Next(&tid, &st) {
		if s.forgotten[st.Pid] { // removed: dropped below, reported nowhere
			dead = append(dead, tid)
			continue
		}
		// The ended period's waits summed in the thread's slots. The
		// kernel leaves them alone until epochTaken says they are read.
		for _, w := range st.Slots {
			if w.Epoch == prev && w.Count > 0 {
				p.Waits = append(p.Waits, WaitTotal{PID: int(st.Pid), TID: int(tid), State: w.State, Site: w.Site, NS: w.Ns, Count: uint64(w.Count)})
			}
		}
		seen := s.oncpuSeen[tid]
		if st.OncpuNs < seen { // the entry was made anew (a reused TID)
			seen = 0
		}
		on := st.OncpuNs - seen
		s.oncpuSeen[tid] = st.OncpuNs
		if st.Dead != 0 {
			dead = append(dead, tid)
		} else if st.Start != 0 {
			if from := max(st.Start, prev); now > from {
				p.Waits = append(p.Waits, WaitTotal{PID: int(st.Pid), TID: int(tid), State: st.State, Site: st.Site, NS: now - from})
			}
		} else if st.OncpuSince != 0 {
			if from := max(st.OncpuSince, prev); now > from {
				on += now - from
			}
		}
		if on > 0 {
			p.OnCPU = append(p.OnCPU, ThreadTime{PID: int(st.Pid), TID: int(tid), NS: on})
		}
	}
	errs = append(errs, it.Err())
	for _, t := range dead {
		delete(s.oncpuSeen, t)
		if err := s.objs.OffcpuThreads.Delete(t); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	// Entries of the new period stay for the next EndPeriod.
	waits, err := s.takeWaits(func(k profileWaitKey, _ profileWaitTotal) bool { return k.Epoch <= prev })
	for _, w := range waits {
		if !s.forgotten[uint32(w.PID)] {
			p.Waits = append(p.Waits, w)
		}
	}
	clear(s.forgotten)
	errs = append(errs, err)
	if err := s.objs.OffcpuEpoch.Put(epochTaken, prev); err != nil {
		errs = append(errs, fmt.Errorf("free the wait slots: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return p, fmt.Errorf("end off-CPU period: %w", err)
	}
	return p, nil
}

// takeWaits removes the kernel's wait totals that keep says to, and returns them.
func (s *Sampler) takeWaits(keep func(profileWaitKey, profileWaitTotal) bool) ([]WaitTotal, error) {
	var key profileWaitKey
	var val profileWaitTotal
	var keys []profileWaitKey
	it := s.objs.WaitTotals.Iterate()
	for it.Next(&key, &val) {
		if keep(key, val) {
			keys = append(keys, key)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read wait totals: %w", err)
	}
	var out []WaitTotal
	for _, k := range keys {
		// Lookup and delete is one step, so the kernel's later additions go to a
		// new entry instead of being lost between a read and a delete.
		if err := s.objs.WaitTotals.LookupAndDelete(&k, &val); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return out, fmt.Errorf("take waits of thread %d: %w", k.Tid, err)
		}
		out = append(out, WaitTotal{PID: int(val.Pid), TID: int(k.Tid), State: k.State, Site: k.Site, NS: val.Ns, Count: val.Count})
	}
	return out, nil
}

// WaitStackInto decodes into smp (reusing its arrays) the stack the kernel
// keeps for a wait site, or returns an error wrapping ebpf.ErrKeyNotExist
// once the site gave way to others. The value is read into a buffer kept
// for the next call: a period can read thousands.
func (s *Sampler) WaitStackInto(site uint64, smp *Sample) error {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	if s.waitRaw == nil {
		s.waitRaw = make([]byte, s.objs.WaitStacks.ValueSize())
	}
	if err := s.objs.WaitStacks.Lookup(site, s.waitRaw); err != nil {
		return fmt.Errorf("read stack of wait site %#x: %w", site, err)
	}
	return DecodeInto(s.waitRaw, smp)
}

// forgetBatch is how many removed targets may wait for the next EndPeriod
// to have their off-CPU state dropped before one scan drops them all.
const forgetBatch = 64

// forgetOffCPU drops the off-CPU state of pid's threads: a removed target's
// waits belong to no profile any more. Scanning the kernel's maps once per
// removed process took 17 % of the agent's CPU under process churn (the
// soak), so the removal is only noted here: EndPeriod, which scans the maps
// anyway, drops the state, or one scan drops forgetBatch at once. Until then
// the kernel leaves the entries alone (the process is no target any more).
func (s *Sampler) forgetOffCPU(pid int) error {
	if s.sched == nil {
		return nil
	}
	s.periodMu.Lock()
	defer s.periodMu.Unlock()
	s.forgotten[uint32(pid)] = true
	if len(s.forgotten) < forgetBatch {
		return nil
	}
	return s.dropForgotten()
}

// dropForgotten deletes the off-CPU state of the targets in s.forgotten.
// The caller holds periodMu.
func (s *Sampler) dropForgotten() error {
	if len(s.forgotten) == 0 {
		return nil
	}
	var errs []error
	var tid uint32
	var st profileOffcpuState
	var tids []uint32
	it := s.objs.OffcpuThreads.Iterate()
	for it.Next(&tid, &st) {
		if s.forgotten[st.Pid] {
			tids = append(tids, tid)
		}
	}
	errs = append(errs, it.Err())
	for _, t := range tids {
		delete(s.oncpuSeen, t)
		if err := s.objs.OffcpuThreads.Delete(t); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	_, err := s.takeWaits(func(_ profileWaitKey, v profileWaitTotal) bool { return s.forgotten[v.Pid] })
	errs = append(errs, err)
	clear(s.forgotten)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("forget off-CPU state of removed targets: %w", err)
	}
	return nil
}
