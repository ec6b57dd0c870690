package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Defaults, as in the Blackfire Python API the agent's options follow.
const (
	DefaultPeriod        = 45 * time.Second
	DefaultUploadTimeout = 10 * time.Second
	DefaultRate          = 100
	// DefaultRequestTimeout is how long a registration connection may take
	// to send its first request.
	DefaultRequestTimeout = 10 * time.Second
)

// MinPeriod is the shortest period the agent takes (for tests: in
// production a period is tens of seconds).
const MinPeriod = 10 * time.Millisecond

// Limits on what a target may ask for.
const (
	maxLabels     = 30 // Pyroscope's default limit per series, less our own
	maxLabelLen   = 256
	minPeriod     = MinPeriod
	maxPeriod     = 24 * time.Hour
	maxAppNameLen = 256
)

// Options configure an Agent.
type Options struct {
	ApplicationName string        // default name of every target; "bprof" if empty
	Period          time.Duration // length of a batch; DefaultPeriod if 0
	UploadTimeout   time.Duration // bound on one upload; DefaultUploadTimeout if 0
	Labels          map[string]string
	PIDs            []int // processes profiled from the start
	// SystemWide profiles every process, picking up new ones as they start
	// (within a second) and dropping those that end.
	SystemWide bool
	// Filter chooses the processes of system-wide mode; its zero value
	// takes every process that runs CPython.
	Filter Filter
	Rate   int // Hz, for the Source's caller; DefaultRate if 0
	Sinks  []Sink
	Log    *slog.Logger // nil discards

	// Source yields the profiles; the agent closes it in Stop. Required:
	// cmd/bprof passes a *profiler.Session.
	Source Source

	// Listen, when set, is the path of the registration socket (mode 0660),
	// owned by ListenGroup when that is set.
	Listen      string
	ListenGroup string
	// RequestTimeout bounds the wait for a whole request on a connection
	// that is not registered (DefaultRequestTimeout if 0); then it gets an
	// error and is closed.
	RequestTimeout time.Duration

	// Memory, when set, adds memory profiles: the PIDs are attached from
	// the start, and registered processes are offered the allocation sampler
	// to load (docs/AGENT.md). System-wide targets get none.
	Memory Memory
}

// Memory is how the agent gives a target memory profiles; cmd/bprof wires
// pkg/memory and the profiler's Session.
type Memory interface {
	// Place puts the allocation sampler where process pid can load it and
	// returns its path as pid sees it.
	Place(pid int) (string, error)
	// Attach turns memory profiles of pid, a target, on: with the sampler it
	// loaded, else by loading one (CPython 3.14+).
	Attach(pid int) error
	// SampleBytes is the mean number of bytes between two sampled
	// allocations: the period of memory profiles.
	SampleBytes() int64
}

// Target is how one process is profiled.
type Target struct {
	ApplicationName string
	Period          time.Duration
	UploadTimeout   time.Duration
	Labels          map[string]string
}

func (o *Options) setDefaults() {
	if o.ApplicationName == "" {
		o.ApplicationName = "bprof"
	}
	if o.Period == 0 {
		o.Period = DefaultPeriod
	}
	if o.UploadTimeout == 0 {
		o.UploadTimeout = DefaultUploadTimeout
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// check reports what is wrong with t, whose zero fields were filled already.
func (t *Target) check() error {
	if t.ApplicationName == "" || len(t.ApplicationName) > maxAppNameLen {
		return fmt.Errorf("application name %.40q: must be 1 to %d bytes", t.ApplicationName, maxAppNameLen)
	}
	if t.Period < minPeriod || t.Period > maxPeriod {
		return fmt.Errorf("period %s: must be between %s and %s", t.Period, minPeriod, maxPeriod)
	}
	if t.UploadTimeout <= 0 || t.UploadTimeout > maxPeriod {
		return fmt.Errorf("upload timeout %s: must be positive and at most %s", t.UploadTimeout, maxPeriod)
	}
	return checkLabels(t.Labels)
}

// CheckLabels reports what is wrong with labels given to the agent: too
// many, too long, a reserved key, '=' in a key or a newline anywhere.
func CheckLabels(m map[string]string) error { return checkLabels(m) }

func checkLabels(m map[string]string) error {
	if len(m) > maxLabels {
		return fmt.Errorf("%d labels: at most %d", len(m), maxLabels)
	}
	for k, v := range m {
		if k == "" || len(k) > maxLabelLen || len(v) > maxLabelLen {
			return fmt.Errorf("label %.40q: keys must be 1 to %d bytes, values at most %d", k, maxLabelLen, maxLabelLen)
		}
		if strings.ContainsAny(k, "=\n") || strings.Contains(v, "\n") {
			return fmt.Errorf("label %.40q: no '=' in keys, no newlines", k)
		}
		for _, r := range reservedLabels {
			if k == r {
				return fmt.Errorf("label %q: reserved, the agent sets it", k)
			}
		}
	}
	return nil
}

// withDefaults fills t's zero fields from the agent's options; t's labels
// are laid over the agent's.
func (o *Options) withDefaults(t Target) Target {
	if t.ApplicationName == "" {
		t.ApplicationName = o.ApplicationName
	}
	if t.Period == 0 {
		t.Period = o.Period
	}
	if t.UploadTimeout == 0 {
		t.UploadTimeout = o.UploadTimeout
	}
	labels := make(map[string]string, len(o.Labels)+len(t.Labels))
	for k, v := range o.Labels {
		labels[k] = v
	}
	for k, v := range t.Labels {
		labels[k] = v
	}
	t.Labels = labels
	return t
}

var errNoSource = errors.New("no profile source: set Options.Source (a *profiler.Session)")
