package agent

import (
	"context"
	"time"

	"github.com/google/pprof/profile"
)

// Source is where profiles come from; *profiler.Session implements it. Cut
// must put every sample in exactly one of the profiles it returns, and its
// samples must carry a numeric `pid` label (docs/CONVENTIONS.md).
type Source interface {
	Add(pid int) error
	Remove(pid int) error
	// Run collects samples until ctx is done. It may return earlier (the
	// Session does when all its targets exited); the agent then runs it again
	// when a target is added.
	Run(ctx context.Context) error
	Cut() (p *profile.Profile, start, end time.Time)
	Close() error
}
