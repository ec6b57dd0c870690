package profiler

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/sampler"
	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/cilium/ebpf"
)

// Wall time is measured, not sampled: the kernel sums every wait of every
// target thread under its wait site and keeps each thread's exact time on the
// CPU; at the end of a period (Cut) the waits still open and the runs still
// going are split at that instant. So each thread's wall time in a profile is
// its whole life within the profile's span, by construction: on-CPU time
// (spread over the thread's CPU samples) plus its waits. A wait's stack is
// the one the kernel kept for its site; a thread blocked since before its
// process was added has the stack snapshot from /proc and the interpreter.

// Wait states (the state label), docs/CONVENTIONS.md.
const (
	stateSleep    = "sleep"
	stateRunqueue = "runqueue"
	stateGIL      = "gil"
)

func stateName(s uint32) string {
	if s == 1 {
		return stateRunqueue
	}
	return stateSleep
}

// blockedThread is a thread found off the CPU when its process was added.
type blockedThread struct {
	pid    int
	frames []symbolize.Frame // leaf first: kernel frames, then Python frames
}

// snapshotBlocked records the stacks of pid's threads that are blocked now.
func (s *Session) snapshotBlocked(pid int) {
	tids, err := process.Threads(pid)
	if err != nil {
		return
	}
	var blocked []int
	for _, tid := range tids {
		if st, err := process.State(pid, tid); err == nil && (st == 'S' || st == 'D') {
			blocked = append(blocked, tid)
		}
	}
	pyStacks := s.pythonStacks(pid, blocked) // one walk of the thread list for all
	for _, tid := range blocked {
		var frames []symbolize.Frame
		if names, err := process.KernelStack(pid, tid); err == nil {
			for _, n := range names {
				frames = append(frames, symbolize.Frame{Kind: symbolize.KindKernel, Name: n})
			}
		}
		frames = append(frames, pyStacks[tid]...)
		s.mu.Lock()
		s.blocked[tid] = &blockedThread{pid: pid, frames: frames}
		s.mu.Unlock()
	}
}

// threadsAtAdd reads the state of pid's threads for the kernel's accounting,
// right before sampling of pid starts.
func threadsAtAdd(pid int) []sampler.ThreadAtAdd {
	tids, err := process.Threads(pid)
	if err != nil {
		return nil
	}
	out := make([]sampler.ThreadAtAdd, 0, len(tids))
	for _, tid := range tids {
		st, err := process.State(pid, tid)
		if err != nil {
			continue // exited
		}
		run, err := process.RunTime(pid, tid)
		if err != nil {
			continue
		}
		out = append(out, sampler.ThreadAtAdd{TID: tid, Blocked: st == 'S' || st == 'D', RunTime: run})
	}
	return out
}

// tracingFrame reports kernel frames of the tracing machinery itself (the
// tracepoint and the BPF program), which top every stack the sched_switch
// program takes and say nothing about the wait.
func tracingFrame(f *symbolize.Frame) bool {
	if f.Kind != symbolize.KindKernel {
		return false
	}
	n := f.Name
	return n == "_einittext" || strings.HasPrefix(n, "bpf_trace_run") || strings.HasPrefix(n, "__bpf_trace") ||
		strings.HasPrefix(n, "__traceiter_") || strings.HasPrefix(n, "bpf_prog_") || strings.HasPrefix(n, "[kernel]+")
}

// waitKey names a wait site's stack in Session.waits.
type waitKey struct {
	pid  int
	site uint64
}

// waitFrames returns the frames of a wait site, named once per site and
// target while the site recurs (sites of a thread that sleeps repeat period
// after period). A site seen for the first time is named but only marked in
// Session.waits; its frames are kept from its second period on. A thread
// preempted while it runs waits where it was preempted, so a busy thread
// makes a new site at nearly every preemption, and keeping each named stack
// (~3 KB) held 8 MB for 16 busy threads over 30 s. A site first seen on a
// thread whose Python state was not known yet (a thread that blocked right
// after it started) gets that thread's Python stack as read once it was
// known.
//
// A site's frames that are not kept are named into arena, which holds the
// frames of a chunk of sites until they are added: naming the ~2,000 sites
// of a period of 16 busy threads one fresh slice each allocated ~40 MB at
// once at the end of a recording and set its peak RSS. Called with
// s.periodMu held, which guards s.waitScratch.
func (s *Session) waitFrames(pid, tid int, site uint64, arena *[]symbolize.Frame) []symbolize.Frame {
	k := waitKey{pid, site}
	w, ok := s.waits[k]
	if ok && (w.frames != nil || w.sample != nil) {
		w.used = s.waitPeriod
	} else {
		smp := &s.waitScratch.smp
		if err := s.sampler.WaitStackInto(site, smp); err != nil {
			if !errors.Is(err, ebpf.ErrKeyNotExist) {
				s.opts.Warn(err.Error())
			}
			return []symbolize.Frame{export.Pseudo("[off-cpu: stack not kept]")}
		}
		unknown := smp.Flags&sampler.FlagPyUnknownThread != 0
		if !ok && !unknown {
			// Its first period: named for this period only.
			s.waits[k] = &waitStack{used: s.waitPeriod}
			n := len(*arena)
			*arena = s.waitSymbolize(smp, *arena)
			return (*arena)[n:len(*arena):len(*arena)]
		}
		w = &waitStack{frames: s.waitSymbolize(smp, nil), used: s.waitPeriod}
		if unknown {
			w.sample = cloneSample(smp)
		}
		if ok {
			s.waits[k] = w // its second period: it recurs
		} else {
			s.waits[k] = &waitStack{used: s.waitPeriod}
		}
	}
	if w.sample == nil {
		return w.frames
	}
	refs, ok := s.lateStack(pid, tid, w.frames)
	if !ok {
		return w.frames
	}
	smp := *w.sample
	smp.Python = refs
	smp.Flags &^= sampler.FlagPyUnknownThread
	return s.waitSymbolize(&smp, nil)
}

// cloneSample copies smp with stacks of its own.
func cloneSample(smp *sampler.Sample) *sampler.Sample {
	c := *smp
	c.Kernel, c.User, c.Python = slices.Clone(smp.Kernel), slices.Clone(smp.User), slices.Clone(smp.Python)
	return &c
}

// waitScratch is what naming wait sites reuses from one site to the next.
type waitScratch struct {
	smp           sampler.Sample
	frames, spare []symbolize.Frame
	addrs         []uint64
}

// forgetWaits drops pid's named wait sites: they are kept per process, so
// without it a host of short-lived processes (the soak) adds entries for
// every process it ever profiled.
func (s *Session) forgetWaits(pid int) {
	s.periodMu.Lock()
	defer s.periodMu.Unlock()
	for k := range s.waits {
		if k.pid == pid {
			delete(s.waits, k)
		}
	}
}

// dropIdleWaits forgets the wait sites no wait was summed under in the
// last waitIdlePeriods periods. A site's native part is the stack pointer
// it waited at, so a process that keeps starting threads (each with a stack
// of its own) adds sites for as long as it lives: the soak's two such
// processes grew the agent's heap by 7 MB a minute until it did this. A
// site that comes back is read again from the kernel's wait_stacks, or
// captured again if the LRU let it go. Called with s.periodMu held.
func (s *Session) dropIdleWaits() {
	for k, w := range s.waits {
		if s.waitPeriod-w.used > waitIdlePeriods {
			delete(s.waits, k)
		}
	}
}

// waitIdlePeriods is how many periods a wait site is kept unused.
const waitIdlePeriods = 4

// waitStack is a wait site's stack, named.
type waitStack struct {
	frames []symbolize.Frame
	sample *sampler.Sample // kept when the thread's Python state was unknown
	used   uint64          // the last period a wait was summed under it (Session.waitPeriod)
}

// waitSymbolize names a wait stack's frames, without those of the tracing
// machinery on top, and appends them to dst. Called with s.periodMu held.
func (s *Session) waitSymbolize(smp *sampler.Sample, dst []symbolize.Frame) []symbolize.Frame {
	sc := &s.waitScratch
	frames := s.symbolizeInto(smp, sc.frames[:0], &sc.addrs, &sc.spare)
	sc.frames = frames[:0]
	for i := 0; i < len(frames) && i < 8; i++ {
		if tracingFrame(&frames[i]) {
			frames = frames[i+1:]
			i = -1
		}
	}
	return append(dst, frames...)
}

// addPeriod adds a period's waits and the threads' exact on-CPU times to
// the current profile.
func (s *Session) addPeriod(p sampler.Period) {
	type wait struct {
		t      sampler.WaitTotal
		frames []symbolize.Frame
	}
	// Named a chunk at a time outside s.mu (naming reads the kernel's maps
	// and the targets' memory, and samples wait for s.mu meanwhile), then
	// added under it: the names of thousands of sites are never all held
	// at once.
	const chunk = 64
	waits := make([]wait, 0, min(len(p.Waits), chunk))
	var all, arena []symbolize.Frame
	for start := 0; start < len(p.Waits); start += chunk {
		waits, arena = waits[:0], arena[:0]
		for _, w := range p.Waits[start:min(start+chunk, len(p.Waits))] {
			var frames []symbolize.Frame
			switch w.Site {
			case sampler.SiteUncaptured:
				frames = []symbolize.Frame{export.Pseudo("[off-cpu: stack not captured]")}
			case sampler.SiteAtAdd:
				s.mu.Lock()
				b := s.blocked[w.TID]
				s.mu.Unlock()
				if b != nil && len(b.frames) > 0 {
					frames = b.frames
				} else {
					frames = []symbolize.Frame{export.Pseudo("[blocked before recording]")}
				}
			default:
				frames = s.waitFrames(w.PID, w.TID, w.Site, &arena)
			}
			waits = append(waits, wait{w, frames})
		}
		s.mu.Lock()
		for _, w := range waits {
			if w.t.Site == sampler.SiteUncaptured && w.t.State == 1 {
				s.builder.AddRunqueue(export.Labels{PID: w.t.PID, TID: w.t.TID, ThreadName: s.threadName(w.t.PID, w.t.TID)}, int64(w.t.NS))
				continue
			}
			state := stateName(w.t.State)
			if w.t.State == 0 && symbolize.GILWait(w.frames) {
				state = stateGIL
			}
			all = append(all[:0], export.Pseudo("[off-cpu: "+state+"]"))
			all = append(all, w.frames...)
			s.builder.Add(all, export.Labels{PID: w.t.PID, TID: w.t.TID, ThreadName: s.threadName(w.t.PID, w.t.TID), State: state},
				export.Values{Wall: int64(w.t.NS)})
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range p.OnCPU {
		s.builder.SetOnCPU(export.Labels{PID: t.PID, TID: t.TID, ThreadName: s.threadName(t.PID, t.TID)}, int64(t.NS))
	}
}

// endPeriod ends the kernel's off-CPU period at now and adds it to the
// current profile.
func (s *Session) endPeriod(now uint64) {
	if !s.opts.OffCPU {
		return
	}
	s.periodMu.Lock()
	defer s.periodMu.Unlock()
	p, err := s.sampler.EndPeriod(now)
	if err != nil {
		s.opts.Warn(err.Error())
	}
	s.addPeriod(p)
	s.dropIdleWaits()
	s.waitPeriod++
}

// clock pairs the kernel's monotonic clock with the wall clock, read together.
// A thread preempted between the two reads would pair instants a slice
// apart (a 13 ms batch once lost 1 ms of wall under load), so the pair is
// taken between two monotonic reads close together, at their midpoint.
func clock() (uint64, time.Time) {
	var m0, m1 uint64
	var wall time.Time
	for try := 0; try < 5; try++ {
		m0 = sampler.Monotonic()
		wall = time.Now()
		m1 = sampler.Monotonic()
		if m1-m0 < clockPairSlack {
			break
		}
	}
	return m0 + (m1-m0)/2, wall
}

// clockPairSlack is how far apart the monotonic reads around a wall read
// may be: a few µs unpreempted.
const clockPairSlack = 20_000 // ns
