package profiler

import (
	"context"
	"time"
)

// The watch looks at the targets every watchMin while something is going
// on (a thread came or went, a thread's name or blocked stack is still to
// be read, memory is profiled), and backs off, doubling, to watchMax while
// nothing is: each look wakes bprof, and five wake-ups a second were a
// fifth of record's steady CPU for one busy thread. A target's exit is
// noticed within watchMax.
const (
	watchMin = 200 * time.Millisecond
	watchMax = time.Second
	// listEvery is how often Python targets' threads are listed even when
	// their number did not change (one thread may have replaced another).
	// A thread is named at its first sample anyway: the listing only names
	// it sooner, which listing every second made a tenth of record's
	// steady CPU.
	listEvery = 5 * time.Second
	// heapSyncEvery is how often the sampled heap forgets freed blocks
	// between Cuts, or it would hold every sampled block of a long period.
	heapSyncEvery = time.Second
)

// watchTargets notices targets that exit, warns once for each, and ends the
// session when none is left. Between, it names new threads, reads the
// stacks of threads blocked before their first sample, and keeps the heap
// profile's view of the targets' samplers.
func (s *Session) watchTargets(ctx context.Context, cancel func()) {
	wait := watchMin
	t := time.NewTimer(wait)
	defer t.Stop()
	var listed, synced time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		alive, total, changed := s.checkTargets()
		now := time.Now()
		listAll := now.Sub(listed) >= listEvery
		if listAll {
			listed = now
		}
		naming := s.retryNames(listAll)
		late := s.readLateStacks()
		memory := s.refreshMemory()
		if memory && now.Sub(synced) >= heapSyncEvery {
			s.syncHeap()
			synced = now
		}
		if total > 0 && alive == 0 {
			cancel()
			return
		}
		if changed || naming || late || memory {
			wait = watchMin
		} else {
			wait = min(2*wait, watchMax)
		}
		t.Reset(wait)
	}
}

// checkTargets notes the targets that exited, and reports how many live,
// how many there are, and whether one exited or its thread count changed.
// One pread of a target's /proc/PID/stat, held open, tells both whether it
// lives and whether its thread count changed, which is when retryNames
// lists its threads. Opening the file and listing the threads at every
// look took a third of the agent's CPU over 54 processes.
func (s *Session) checkTargets() (alive, total int, changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tg := range s.targets {
		if tg.exited {
			continue
		}
		st, err := tg.readStat()
		if err != nil || st.StartTime != tg.startTime || st.State == 'Z' || st.State == 'X' {
			tg.exited = true
			tg.close()
			s.opts.Exited(tg.pid, time.Since(tg.added))
			changed = true
			continue
		}
		if tg.threads != st.Threads {
			tg.threads = st.Threads
			changed = true
		}
		alive++
	}
	return alive, len(s.targets), changed
}
