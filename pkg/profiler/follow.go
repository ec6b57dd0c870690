package profiler

import (
	"context"
	"fmt"
	"time"

	"github.com/bprof/bprof/pkg/process"
)

// FollowChildren adds the processes the targets start (fork, or fork and
// exec) as targets of their own, until ctx is done. It polls /proc every
// interval: a child that starts and exits between two polls is missed, and
// one is sampled from the poll that finds it on. Kept in user space, as the
// BPF side knows only the targets it is told of.
//
// It also notices a target that exec'd (its command line moved: the stack
// is placed anew at each exec) and attaches to the new image's CPython. A
// forked Python child is attached to its copy of the parent's interpreter;
// once it execs, that copy is gone, and the walker's own request for new
// mappings would not redo an attach that looks done.
func (s *Session) FollowChildren(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	images := map[int]uint64{} // pid → /proc/PID/stat arg_start
	for {
		s.mu.Lock()
		parents := make(map[int]bool, len(s.targets))
		for pid, tg := range s.targets {
			if !tg.exited {
				parents[pid] = true
			}
		}
		s.mu.Unlock()
		for pid := range parents {
			st, err := process.ReadStat(pid)
			if err != nil || st.ArgStart == 0 {
				continue
			}
			if old, ok := images[pid]; ok && old != st.ArgStart {
				s.execd(pid)
			}
			images[pid] = st.ArgStart
		}
		kids, err := process.Descendants(parents)
		if err == nil {
			for _, pid := range kids {
				if ctx.Err() != nil {
					return
				}
				if st, err := process.ReadStat(pid); err == nil {
					images[pid] = st.ArgStart
				}
				if err := s.Add(pid); err != nil && process.Exists(pid) {
					s.opts.Warn(fmt.Sprintf("follow child %d: %v", pid, err))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// execd drops what was known of pid's image and attaches to its new one.
// If its interpreter is not loaded yet, the walker's request for the new
// mappings retries the attach.
func (s *Session) execd(pid int) {
	s.python.Forget(pid)
	s.native.Forget(pid)
	if s.unwind != nil {
		s.unwind.requestRefresh(pid)
	}
	s.reattachPython(pid)
}

// AttachWhenPython attaches to pid's CPython as soon as it has one, trying
// every interval until it succeeds or ctx is done. It is for a target added
// before it exec'd (`record -- COMMAND` adds the shell that execs the
// command): without unwind tables (Options.FramePointers) nothing else
// notices the exec, and with them the attach they trigger at the first new
// mapping may come while the loader has mapped the executable but not yet
// libpython. Failed tries are silent: the interpreter is still loading.
func (s *Session) AttachWhenPython(ctx context.Context, pid int, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for !s.python.Attached(pid) {
		if err := s.attachPython(pid); err == nil && s.python.Attached(pid) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
