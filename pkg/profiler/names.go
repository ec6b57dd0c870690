package profiler

import (
	"time"

	"github.com/bprof/bprof/pkg/process"
)

// Thread names: a Python thread is labelled with its threading.Thread.name
// (MainThread, ThreadPoolExecutor-0_1), read from the interpreter's memory,
// any other thread with its OS name. The names of a process are read again
// when a thread appears that has none yet: threading registers a thread only
// once it runs, and a thread of a pool is often sampled before.

// nameRetry is how long an OS name stands in for a Python thread's name
// before the interpreter is asked again.
const nameRetry = time.Second

type threadKey struct{ pid, tid int }

type threadName struct {
	name   string
	python bool      // from threading; else the OS name
	final  bool      // the thread was gone when named: nothing will rename it
	at     time.Time // when an OS name was taken
}

// threadName is the thread's name, cached; comm is its OS name if known.
// Called with s.mu held.
func (s *Session) threadName(pid, tid int, comm ...string) string {
	k := threadKey{pid, tid}
	if n, ok := s.names[k]; ok && (n.python || n.final || time.Since(n.at) < nameRetry) {
		return n.name
	}
	// threading forgets a thread before it ends, so a thread that is gone
	// is not asked about: at a period's end, the waits of hundreds of
	// threads born and gone within a tick are named at once, and a read of
	// the interpreter's names for each stalled the Cut for minutes (the soak).
	osName, err := process.Comm(pid, tid)
	if err == nil && s.python.Attached(pid) {
		if names, err := s.pythonNames(pid); err == nil {
			for t, name := range names {
				s.names[threadKey{pid, t}] = threadName{name: name, python: true}
			}
			if n, ok := s.names[k]; ok && n.python {
				return n.name
			}
		}
	}
	n := threadName{at: time.Now()}
	if len(comm) > 0 && comm[0] != "" {
		n.name = comm[0]
	} else if err == nil {
		n.name = osName
	} else if old, ok := s.names[k]; ok {
		n.name = old.name // the thread is gone: keep what was known
	}
	n.final = err != nil
	s.names[k] = n
	return n.name
}

// finalName is the name a thread goes by in the profile of the period
// ending: the best known now, which for a thread sampled before threading
// registered it is its threading name, not the OS name its first samples
// came with. Called with s.mu held.
func (s *Session) finalName(pid, tid int, name string) string {
	if n, ok := s.names[threadKey{pid, tid}]; ok && n.name != "" {
		return n.name
	}
	return name
}

// retryNames asks the interpreters again for the names of threads that
// have only their OS name, for nameRetry·4 after they were first named: a
// thread appears in threading's registry only once it runs, and a thread
// that lives a second must not stay unnamed because its first sample came
// too early. Threads of a Python target not named yet are looked for too:
// a thread that mostly sleeps may have no sample until it exits, when
// threading has forgotten it. The thread lists it reads also prune what is
// known of threads that exited (pruneThreads).
//
// A Python target's threads are listed when its thread count changed since
// the last listing, and at least every listEvery (a thread that ended as
// another began leaves the count as it was). It reports whether some
// thread's name is still to be asked for again.
func (s *Session) retryNames(listAll bool) (pending bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pids := map[int]bool{}
	for k, n := range s.names {
		if !n.python && !n.final && time.Since(n.at) < 4*nameRetry {
			pids[k.pid] = true
		}
	}
	// Python targets' threads are listed at every look, to name new ones;
	// all targets' at the first look of a period, for pruning, which needs
	// no more (and costs a pass over every name).
	listed := map[int][]int{}
	prune := s.prunedAt != s.period
	s.prunedAt = s.period
	for pid, tg := range s.targets {
		python := s.python.Attached(pid)
		if tg.exited || !python && !prune || !prune && !listAll && tg.threads == tg.listed {
			continue
		}
		tids, err := process.Threads(pid)
		if err != nil {
			continue
		}
		listed[pid] = tids
		tg.listed = len(tids)
		if !python {
			continue
		}
		for _, tid := range tids {
			if _, ok := s.names[threadKey{pid, tid}]; !ok {
				// Its OS name stands until threading knows it: asked
				// below, and then at each retry.
				comm, _ := process.Comm(pid, tid)
				s.names[threadKey{pid, tid}] = threadName{name: comm, at: time.Now()}
				pids[pid] = true
			}
		}
	}
	for pid := range pids {
		if !s.python.Attached(pid) {
			continue
		}
		names, err := s.pythonNames(pid)
		if err != nil {
			continue
		}
		for t, name := range names {
			s.names[threadKey{pid, t}] = threadName{name: name, python: true}
		}
	}
	if prune {
		s.pruneThreads(listed)
	}
	return len(pids) > 0
}

// pruneThreads drops the names, late stacks and seen marks (Session.threads,
// which counts them) of threads that exited, found from the thread lists of
// some targets (by PID): without it a long-lived process with thread churn
// would add entries for every thread it ever had. A thread's samples and
// waits are named until the Cut of the period it exited in, and its last
// ones may be read after the Cut that comes next (a wait that ends at the
// exit, after the Cut read the clock; a sample the Cut's flush did not wait
// for), so a thread found gone is forgotten only once two Cuts have passed.
// Threads of targets not listed are left as they are. Called with s.mu held.
func (s *Session) pruneThreads(listed map[int][]int) {
	if len(listed) == 0 {
		return
	}
	live := map[threadKey]bool{}
	for pid, tids := range listed {
		for _, tid := range tids {
			live[threadKey{pid, tid}] = true
		}
	}
	check := func(k threadKey) {
		if _, ok := listed[k.pid]; !ok {
			return
		}
		if live[k] {
			delete(s.gone, k) // its TID was reused, or never gone
			return
		}
		at, ok := s.gone[k]
		switch {
		case !ok:
			s.gone[k] = s.period
		case s.period >= at+2:
			delete(s.names, k)
			delete(s.late, k)
			delete(s.gone, k)
			// Counted already; a new thread that takes its TID is
			// another thread, to be counted again.
			delete(s.threads, k.tid)
		}
	}
	// A thread in both maps is checked twice: the second check finds it
	// marked in this period, or deleted from both.
	for k := range s.names {
		check(k)
	}
	for k := range s.late {
		check(k)
	}
}

// forgetThreads drops what is known of pid's threads: names, seen marks,
// stacks read late, and stacks of threads blocked when it was added.
func (s *Session) forgetThreads(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.names {
		if k.pid == pid {
			delete(s.names, k)
			delete(s.threads, k.tid)
		}
	}
	for k := range s.late {
		if k.pid == pid {
			delete(s.late, k)
		}
	}
	for k := range s.gone {
		if k.pid == pid {
			delete(s.gone, k)
		}
	}
	for tid, b := range s.blocked {
		if b.pid == pid {
			delete(s.blocked, tid)
		}
	}
}
