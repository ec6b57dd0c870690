package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/bprof/bprof/pkg/container"
	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/process"
	"github.com/google/pprof/profile"
)

// Agent profiles a changing set of processes and ships one batch per target
// and period to its sinks.
type Agent struct {
	opts      Options
	log       *slog.Logger
	host      string
	alive     func(pid int) bool   // whether a target still exists
	startTime func(pid int) uint64 // when the process with this PID started; 0 if unknown
	scanEvery time.Duration        // system-wide: how often /proc is scanned (scanInterval)

	ops      chan op
	stopLoop chan struct{}
	loopDone chan struct{}
	kick     chan struct{} // a target was added: rerun the Source if it ended
	cancel   context.CancelFunc
	runDone  chan struct{}
	server   *server

	mu      sync.Mutex
	state   int             // 0 new, 1 started, 2 stopped
	targets map[int]*target // owned by the loop goroutine once started
}

type target struct {
	pid        int
	cfg        Target
	start      time.Time         // of the current period
	where      map[string]string // container labels, read when the target is made
	startTime  uint64            // of the process, to tell when its PID is reused; 0 if unknown
	parts      []*profile.Profile
	registered bool // added by the user; else samples of an unknown pid
}

// op is a request to the loop goroutine.
type op struct {
	add    bool
	memory bool // attach memory profiles to a target
	pid    int
	cfg    Target
	result chan error
}

// New checks opts and returns an Agent that does nothing until Start.
func New(opts Options) (*Agent, error) {
	opts.setDefaults()
	if opts.Source == nil {
		return nil, fmt.Errorf("new agent: %w", errNoSource)
	}
	if err := checkLabels(opts.Labels); err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	def := opts.withDefaults(Target{})
	if err := def.check(); err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return &Agent{
		opts:      opts,
		log:       opts.Log,
		host:      host,
		alive:     processAlive,
		scanEvery: scanInterval,
		startTime: func(pid int) uint64 {
			st, _ := process.StartTime(pid)
			return st
		},
		ops:      make(chan op),
		stopLoop: make(chan struct{}),
		loopDone: make(chan struct{}),
		kick:     make(chan struct{}, 1),
		runDone:  make(chan struct{}),
		targets:  map[int]*target{},
	}, nil
}

// newTarget makes the target of pid, reading what is fixed for the
// process's life: where it runs and when it started.
func (a *Agent) newTarget(pid int, cfg Target, start time.Time, registered bool) *target {
	t := &target{pid: pid, cfg: cfg, start: start, registered: registered, where: a.where(pid)}
	if pid > 0 {
		t.startTime = a.startTime(pid)
	}
	return t
}

// reused reports whether t's PID now belongs to another process.
func (a *Agent) reused(t *target) bool {
	if t.startTime == 0 || t.pid <= 0 {
		return false
	}
	now := a.startTime(t.pid)
	return now != 0 && now != t.startTime
}

// finish ships t's last batch and forgets it: its process is gone.
func (a *Agent) finish(t *target) {
	a.distribute()
	a.ship(t, time.Now(), true)
	if t.registered {
		a.opts.Source.Remove(t.pid)
	}
	delete(a.targets, t.pid)
	a.log.Info("target exited", "pid", t.pid, "application", t.cfg.ApplicationName, "reason", "pid reused")
}

// where reads the container and pod pid runs in, as labels (none for a
// process on the host, or one that is gone).
func (a *Agent) where(pid int) map[string]string {
	if pid <= 0 {
		return nil
	}
	info, err := container.ForPID(pid)
	if err != nil {
		return nil
	}
	return info.Labels()
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Start adds Options.PIDs to the source, starts the sinks (the Pyroscope sink
// reads its spool here), the source, the period loop and the registration
// socket. If Start fails, the source is closed and the Agent is done.
func (a *Agent) Start() error {
	a.mu.Lock()
	if a.state != 0 {
		a.mu.Unlock()
		return errors.New("start agent: already started")
	}
	a.state = 1
	a.mu.Unlock()
	var started []Sink
	fail := func(err error) error {
		a.mu.Lock()
		a.state = 2
		a.mu.Unlock()
		for _, s := range started {
			s.Close()
		}
		a.opts.Source.Close()
		return fmt.Errorf("start agent: %w", err)
	}
	for _, s := range a.opts.Sinks {
		if st, ok := s.(interface{ Start() error }); ok {
			if err := st.Start(); err != nil {
				return fail(err)
			}
		}
		started = append(started, s)
	}
	for _, pid := range a.opts.PIDs {
		if err := a.opts.Source.Add(pid); err != nil {
			return fail(err)
		}
		// The first period starts when sampling does, after Add: start-up
		// (symbols, unwind tables) is no part of it.
		a.targets[pid] = a.newTarget(pid, a.opts.withDefaults(Target{}), time.Now(), true)
		if a.opts.Memory != nil {
			if err := a.opts.Memory.Attach(pid); err != nil {
				a.log.Warn("no memory profiles for this target", "pid", pid, "err", err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go a.run(ctx)
	go a.loop()
	if a.opts.SystemWide {
		go a.scan(a.stopLoop)
	}
	if a.opts.Listen != "" {
		srv, err := listen(a, a.opts.Listen, a.opts.ListenGroup)
		if err != nil {
			a.Stop()
			return fmt.Errorf("start agent: %w", err)
		}
		a.server = srv
	}
	return nil
}

// Stop closes the registration socket, stops the source, cuts every target's
// partial period into a final batch, ships it, closes the sinks (which flush
// what they can) and closes the source.
func (a *Agent) Stop() error {
	a.mu.Lock()
	if a.state != 1 {
		a.mu.Unlock()
		return errors.New("stop agent: not running")
	}
	a.state = 2
	a.mu.Unlock()

	var errs []error
	if a.server != nil {
		errs = append(errs, a.server.close())
	}
	close(a.stopLoop)
	<-a.loopDone
	a.cancel()
	<-a.runDone
	a.cutAndShip(true)
	for _, s := range a.opts.Sinks {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, a.opts.Source.Close())
	return errors.Join(errs...)
}

// Register profiles pid as cfg says (zero fields take the agent's options);
// registering a pid again replaces its settings from its next period.
func (a *Agent) Register(pid int, cfg Target) error {
	if pid <= 0 {
		return fmt.Errorf("register %d: not a process id", pid)
	}
	cfg = a.opts.withDefaults(cfg)
	if err := cfg.check(); err != nil {
		return fmt.Errorf("register %d: %w", pid, err)
	}
	return a.do(op{add: true, pid: pid, cfg: cfg})
}

// Memory turns memory profiles of pid, a registered target, on (see
// Options.Memory). It runs on the loop goroutine, like registrations, so it
// never races the target's removal.
func (a *Agent) Memory(pid int) error {
	if a.opts.Memory == nil {
		return errors.New("memory profiles are off")
	}
	return a.do(op{memory: true, pid: pid})
}

// Unregister stops profiling pid and ships its last batch at once.
func (a *Agent) Unregister(pid int) error {
	return a.do(op{pid: pid})
}

func (a *Agent) do(o op) error {
	o.result = make(chan error, 1)
	select {
	case a.ops <- o:
		return <-o.result
	case <-a.loopDone:
		return errors.New("agent stopped")
	}
}

// run keeps the source running until ctx is done.
func (a *Agent) run(ctx context.Context) {
	defer close(a.runDone)
	for {
		if err := a.opts.Source.Run(ctx); err != nil {
			a.log.Warn("profile source stopped", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		}
	}
}

// loop owns the targets: it cuts at the earliest period end and applies
// registrations.
func (a *Agent) loop() {
	defer close(a.loopDone)
	timer := time.NewTimer(a.untilDue())
	defer timer.Stop()
	for {
		select {
		case <-a.stopLoop:
			return
		case <-timer.C:
			a.cutAndShip(false)
		case o := <-a.ops:
			o.result <- a.apply(o)
		}
		timer.Reset(a.untilDue())
	}
}

// untilDue is the time until the earliest period end.
func (a *Agent) untilDue() time.Duration {
	next := time.Now().Add(a.opts.Period)
	for _, t := range a.targets {
		if due := t.start.Add(t.cfg.Period); due.Before(next) {
			next = due
		}
	}
	return max(time.Until(next), time.Millisecond)
}

func (a *Agent) apply(o op) error {
	t := a.targets[o.pid]
	if o.memory {
		if t == nil || !t.registered {
			return fmt.Errorf("memory %d: not a target", o.pid)
		}
		return a.opts.Memory.Attach(o.pid)
	}
	if o.add && t != nil && a.reused(t) {
		// Another process has the PID now: the old one's last batch is
		// its own, and the new one starts afresh (its Python, its maps).
		a.finish(t)
		t = nil
	}
	if o.add {
		if t != nil && t.registered {
			t.cfg = o.cfg
			return nil
		}
		if err := a.opts.Source.Add(o.pid); err != nil {
			return err
		}
		select {
		case a.kick <- struct{}{}:
		default:
		}
		if t == nil {
			t = a.newTarget(o.pid, o.cfg, time.Now(), true)
			a.targets[o.pid] = t
		}
		t.cfg, t.registered = o.cfg, true
		return nil
	}
	if t == nil || !t.registered {
		return fmt.Errorf("unregister %d: not a target", o.pid)
	}
	err := a.opts.Source.Remove(o.pid)
	a.distribute()
	a.ship(t, time.Now(), true)
	delete(a.targets, o.pid)
	return err
}

// distribute cuts the source's profile and files each pid's part with its
// target, making a target for a pid it does not know.
func (a *Agent) distribute() time.Time {
	p, start, end := a.opts.Source.Cut()
	if p == nil {
		return end
	}
	for pid, part := range splitByPID(p) {
		t := a.targets[pid]
		if t == nil {
			t = a.newTarget(pid, a.opts.withDefaults(Target{}), start, false)
			a.targets[pid] = t
		}
		t.parts = append(t.parts, part)
	}
	return end
}

// cutAndShip ships the batches of targets whose period ended (all of them
// when final) and drops targets that are gone.
func (a *Agent) cutAndShip(final bool) {
	end := a.distribute()
	for pid, t := range a.targets {
		gone := t.registered && pid > 0 && (!a.alive(pid) || a.reused(t))
		if !final && !gone && end.Before(t.start.Add(t.cfg.Period)) {
			continue
		}
		a.ship(t, end, final || gone)
		if gone {
			a.log.Info("target exited", "pid", pid, "application", t.cfg.ApplicationName)
			a.opts.Source.Remove(pid)
		}
		if gone || !t.registered {
			delete(a.targets, pid)
		}
	}
}

// ship hands t's batch for [t.start, end) to every sink and starts its next
// period. A period without samples ships nothing.
func (a *Agent) ship(t *target, end time.Time, final bool) {
	parts, start := t.parts, t.start
	t.parts, t.start = nil, end
	if len(parts) == 0 {
		return
	}
	p, err := mergeParts(parts, start, end)
	if err != nil {
		a.log.Error("batch dropped", "pid", t.pid, "err", err)
		return
	}
	b := &Batch{
		ApplicationName: t.cfg.ApplicationName,
		PID:             t.pid,
		Hostname:        a.host,
		Labels:          t.cfg.Labels,
		Where:           t.where,
		Start:           start,
		End:             end,
		Samples:         sampleCount(p),
		Final:           final,
		Period:          t.cfg.Period,
		UploadTimeout:   t.cfg.UploadTimeout,
		Profile:         p,
	}
	if a.opts.Memory != nil {
		b.AllocSampleBytes = a.opts.Memory.SampleBytes()
	}
	export.AddLabels(p, func(int) map[string]string { return t.where })
	p.Comments = labelComments(b.AllLabels())
	for _, s := range a.opts.Sinks {
		if err := s.Send(b); err != nil {
			a.log.Error("batch not shipped", "sink", s.String(), "application", b.ApplicationName, "pid", b.PID, "err", err)
		}
	}
}
