package profiler

import (
	"errors"
	"fmt"
	"math"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/memory"
	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/python"
	"github.com/bprof/bprof/pkg/sampler"
	"github.com/bprof/bprof/pkg/symbolize"
)

// Memory profiles (docs/ARCHITECTURE.md): an allocation sampler inside each
// target calls a probe on sampled allocations; the sampler's uprobe sends
// them here. A KindAlloc adds its weight to alloc_* at its stack and, if the
// library tracks the block, enters the live heap. The library keeps the
// sampled blocks not yet freed in a set; Cut copies each target's set and
// forgets the blocks missing from it (syncHeap), then adds the live heap as
// inuse_*: what the sampled blocks still live at that moment stand for.

// memTarget is the allocation sampler of one target.
type memTarget struct {
	smp  *memory.Sampler
	base memory.Ctl // its counters when this session enabled it
	last memory.Ctl // the last read (a target that exited keeps it)
}

// MemoryCounts are what a Session's memory profiles have seen.
type MemoryCounts struct {
	Allocs    int64  // sampled allocations added to profiles
	Frees     uint64 // frees of sampled blocks in the targets while this session had them on
	Sampled   uint64 // allocations the targets' samplers sampled while this session had them on
	Dropped   uint64 // of those, never seen here (ring buffer full, target gone)
	Live      int    // sampled blocks live now
	Untracked uint64 // sampled blocks the samplers could not track (no memory in the target)
}

// ErrMemoryUnsupported is what AttachMemory's error is (errors.Is) for a
// process whose interpreter cannot be given a sampler from outside.
var ErrMemoryUnsupported = errors.New("memory profiles unsupported")

type unsupportedError struct{ msg string }

func (e unsupportedError) Error() string        { return e.msg }
func (e unsupportedError) Is(target error) bool { return target == ErrMemoryUnsupported }

// CheckMemory says, before any BPF is loaded, whether AttachMemory can work
// for pid: it has an allocation sampler loaded, or runs a CPython 3.14+ with
// remote debugging on and a filesystem the library can be written to. The
// error is AttachMemory's.
func CheckMemory(pid int) error {
	if _, err := memory.Find(pid); err == nil || !errors.Is(err, memory.ErrNotLoaded) {
		return err
	}
	in, _, err := symbolize.NewPython(nil).Attach(pid)
	if err != nil {
		return err
	}
	if err := memoryUnsupported(pid, in); err != nil {
		return err
	}
	return memory.CheckInject(pid, in.RuntimeAddr)
}

// memoryUnsupported is the error for a process whose interpreter in (nil:
// none) cannot be given a sampler from outside, or nil.
func memoryUnsupported(pid int, in *python.Interpreter) error {
	switch {
	case in == nil:
		return unsupportedError{fmt.Sprintf("process %d does not run a CPython bprof can walk: memory profiles need one", pid)}
	case !in.Version.AtLeast(3, 14):
		return unsupportedError{fmt.Sprintf("process %d runs Python %s: memory profiles attach to Python 3.14+ only (PEP 768); for older versions use bprof_client in the program, with bprof agent --memory",
			pid, in.Version)}
	}
	return nil
}

// AttachMemory turns on memory profiles of pid, a target already added: it
// uses the allocation sampler the process loaded itself (bprof_client),
// else loads one by PEP 768 remote execution (CPython 3.14+), attaches the
// uprobes and enables sampling. An error is one line meant for the user.
func (s *Session) AttachMemory(pid int) error {
	if !s.opts.Memory {
		return errors.New("memory profiles were not asked for when the session started")
	}
	smp, err := memory.Find(pid)
	if err != nil && !errors.Is(err, memory.ErrNotLoaded) {
		return err
	}
	if smp == nil {
		in := s.python.Interpreter(pid)
		if err := memoryUnsupported(pid, in); err != nil {
			return err
		}
		if smp, err = memory.Inject(pid, in.RuntimeAddr, 0); err != nil {
			return err
		}
	}
	if err := s.sampler.AttachAllocProbes(pid, smp.ProbePath()); err != nil {
		smp.Close()
		return err
	}
	if s.unwind != nil {
		// The sampler's library is new code in pid: its table, before the
		// first sample walks through it.
		if err := s.unwind.load(pid); err != nil {
			s.opts.Warn(fmt.Sprintf("process %d: %v", pid, err))
		}
	}
	base, err := smp.Read()
	if err == nil {
		err = smp.Enable(uint64(s.opts.AllocSampleBytes))
	}
	if err != nil {
		s.sampler.DetachAllocProbes(pid)
		smp.Close()
		return err
	}
	s.mu.Lock()
	if old := s.mem[pid]; old != nil {
		old.smp.Close()
	}
	s.mem[pid] = &memTarget{smp: smp, base: base, last: base}
	s.mu.Unlock()
	return nil
}

// stopMemory turns the samplers of pids off (their allocations pass
// through), keeping what was recorded.
func (s *Session) stopMemory(pids []int) {
	s.mu.Lock()
	var ts []*memTarget
	for _, pid := range pids {
		if t := s.mem[pid]; t != nil {
			ts = append(ts, t)
		}
	}
	s.mu.Unlock()
	for _, t := range ts {
		if process.Exists(t.smp.PID) {
			t.smp.Disable()
		}
	}
}

// detachMemory stops pid's sampler and detaches its uprobes. Its live
// blocks stay for the next Cut (its last inuse_* snapshot), then go.
func (s *Session) detachMemory(pid int) {
	s.mu.Lock()
	t := s.mem[pid]
	delete(s.mem, pid)
	if s.heap != nil && t != nil {
		s.memRemoved[pid] = true
	}
	s.mu.Unlock()
	if t == nil {
		return
	}
	if process.Exists(pid) {
		t.smp.Disable()
		// Its blocks are in the next Cut for the last time: as they are now.
		s.mu.Lock()
		upTo := s.heap.Seq()
		s.mu.Unlock()
		s.retainLive(t, upTo)
	}
	// Its counters stay in MemoryCounts.
	final := t.last
	if ctl, err := t.smp.Read(); err == nil {
		final = ctl
	}
	s.mu.Lock()
	s.memGone.Sampled += final.Sampled - t.base.Sampled
	s.memGone.Frees += final.Freed - t.base.Freed
	s.memGone.Untracked += final.Untracked - t.base.Untracked
	s.mu.Unlock()
	t.smp.Close()
	s.sampler.DetachAllocProbes(pid)
}

// MemoryCounts reads the targets' samplers and says what was sampled and
// what reached the profile.
func (s *Session) MemoryCounts() MemoryCounts {
	s.mu.Lock()
	c := s.memCounts
	c.Sampled, c.Frees, c.Untracked = s.memGone.Sampled, s.memGone.Frees, s.memGone.Untracked
	if s.heap != nil {
		c.Live = s.heap.Len()
	}
	ts := make([]*memTarget, 0, len(s.mem))
	for _, t := range s.mem {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	for _, t := range ts {
		ctl, err := t.smp.Read()
		s.mu.Lock()
		if err != nil {
			ctl = t.last
		}
		t.last = ctl
		s.mu.Unlock()
		c.Sampled += ctl.Sampled - t.base.Sampled
		c.Frees += ctl.Freed - t.base.Freed
		c.Untracked += ctl.Untracked - t.base.Untracked
	}
	// A target that exited took its last counts with it: what it sampled
	// since the last read (refreshMemory) is at least what arrived.
	if seen := uint64(c.Allocs); c.Sampled > seen {
		c.Dropped = c.Sampled - seen
	} else {
		c.Sampled = seen
	}
	return c
}

// refreshMemory reads the targets' sampler counters, so that a target that
// exits leaves counts at most a look (watchMin) old. It reports whether
// memory is profiled.
func (s *Session) refreshMemory() (profiled bool) {
	s.mu.Lock()
	ts := make([]*memTarget, 0, len(s.mem))
	for _, t := range s.mem {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	if len(ts) == 0 {
		return false
	}
	for _, t := range ts {
		if ctl, err := t.smp.Read(); err == nil {
			s.mu.Lock()
			t.last = ctl
			s.mu.Unlock()
		}
	}
	return true
}

// addAlloc adds one sampled allocation. Called with s.mu held.
func (s *Session) addAlloc(smp *sampler.Sample, frames []symbolize.Frame) {
	l := export.Labels{PID: smp.PID, TID: smp.TID, ThreadName: smp.Comm}
	objects := memory.Weight(smp.Size, smp.Value)
	s.builder.Add(frames, l, export.Values{AllocObjects: int64(math.Round(objects)), AllocSpace: int64(smp.Value)})
	s.memCounts.Allocs++
	if smp.State&sampler.AllocTracked != 0 {
		s.heap.Alloc(smp.PID, smp.Addr, frames, l, float64(smp.Value), objects)
	}
}

// syncHeap forgets the sampled blocks that the targets' samplers no longer
// track: they were freed. Cut calls it once the ring buffer is drained, so
// the heap has every sampled allocation made before the sets are copied;
// blocks that arrive while they are copied are left for the next time.
func (s *Session) syncHeap() {
	s.mu.Lock()
	if s.heap == nil {
		s.mu.Unlock()
		return
	}
	upTo := s.heap.Seq()
	ts := make([]*memTarget, 0, len(s.mem))
	for _, t := range s.mem {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	for _, t := range ts {
		s.retainLive(t, upTo)
	}
}

// retainLive forgets t's blocks up to Seq() == upTo that are gone from its
// sampler's live set. A target that cannot be read any more (it exited)
// keeps what it had: its blocks go with it at the Cut.
func (s *Session) retainLive(t *memTarget, upTo uint64) {
	live, err := t.smp.LiveBlocks()
	if err != nil {
		if process.Exists(t.smp.PID) {
			s.opts.Warn(fmt.Sprintf("process %d: inuse_* keeps the blocks of the last read: %v", t.smp.PID, err))
		}
		return
	}
	s.mu.Lock()
	s.heap.Retain(t.smp.PID, live, upTo)
	s.mu.Unlock()
}

// addInuse adds the live heap to the builder about to be cut. Blocks of
// targets that exited are gone; those of targets removed since the last Cut
// are in this one for the last time. Called with s.mu held.
func (s *Session) addInuse(b *export.Builder) {
	if s.heap == nil {
		return
	}
	s.heap.Each(func(pid int) bool {
		if s.memRemoved[pid] {
			return !process.Exists(pid)
		}
		t := s.targets[pid]
		return t == nil || t.exited
	}, func(site *memory.Site, bytes, objects int64) {
		b.Add(site.Frames, site.Labels, export.Values{InuseObjects: objects, InuseSpace: bytes})
	})
	for pid := range s.memRemoved {
		s.heap.Forget(pid)
		delete(s.memRemoved, pid)
	}
}

// trimSampler drops the leaf frames of a sampled allocation that are the
// allocation sampler's own (the probe, the hook): the stack starts at the
// allocator the program called.
func (s *Session) trimSampler(smp *sampler.Sample) {
	s.mu.Lock()
	t := s.mem[smp.PID]
	s.mu.Unlock()
	if t == nil {
		return
	}
	i := 0
	for i < len(smp.User) {
		a := sampler.FrameAddr(smp.User[i])
		if a < t.smp.Start || a >= t.smp.End {
			break
		}
		i++
	}
	smp.User = smp.User[i:]
}
