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
func (s *Session) FollowChildren(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.mu.Lock()
		parents := make(map[int]bool, len(s.targets))
		for pid, tg := range s.targets {
			if !tg.exited {
				parents[pid] = true
			}
		}
		s.mu.Unlock()
		kids, err := process.Descendants(parents)
		if err == nil {
			for _, pid := range kids {
				if ctx.Err() != nil {
					return
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
