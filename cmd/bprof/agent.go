package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bprof/bprof/pkg/agent"
	"github.com/bprof/bprof/pkg/memory"
	"github.com/bprof/bprof/pkg/profiler"
)

var _ agent.Source = (*profiler.Session)(nil)

// agentMemory gives the agent's targets memory profiles.
type agentMemory struct {
	sess        *profiler.Session
	sampleBytes int
}

func (m agentMemory) Place(pid int) (string, error) { return memory.Place(pid) }
func (m agentMemory) Attach(pid int) error          { return m.sess.AttachMemory(pid) }
func (m agentMemory) SampleBytes() int64            { return int64(m.sampleBytes) }

// agentConfig is the command line of `bprof agent`, checked.
type agentConfig struct {
	opts      agent.Options // without Source, Sinks and Log
	outputDir string
	py        agent.PyroscopeOptions // URL empty: no upload
	logFormat string
	logLevel  slog.Level
	noOffCPU  bool
	fp        bool
	memory    bool
	allocSize int
	warnings  []string // about flags the agent can still work with, logged at start
}

func parseAgentFlags(args []string, stderr io.Writer) (*agentConfig, error) {
	fs := newFlagSet("agent", agentSynopsis, stderr)
	pids := fs.IntSliceP("pid", "p", nil, "process to profile (repeat for several)")
	app := fs.String("application-name", "", "application name of the -p targets and default for registered ones (default \"bprof\")")
	period := fs.String("period", "45s", "length of each batch: 45s, 1m or plain seconds")
	timeout := fs.String("upload-timeout", "10s", "bound on one upload attempt")
	labels := fs.StringArray("label", nil, "key=value added to every batch (repeat for several)")
	rate := fs.IntP("rate", "r", agent.DefaultRate, "samples per second of CPU time per thread")
	outDir := fs.String("output-dir", "", "write each batch as STEM.pb.gz + STEM.json in this directory")
	url := fs.String("upload-url", "", "Pyroscope server to upload batches to (URL/ingest)")
	tenant := fs.String("tenant-id", "", "X-Scope-OrgID header for multi-tenant Pyroscope servers")
	spoolDir := fs.String("spool-dir", "", "keep undelivered uploads here, across restarts (default: in memory)")
	spoolMax := fs.String("spool-max", "64MiB", "bound of the spool: bytes, or with a K, M, G, KiB, MiB or GiB suffix")
	listen := fs.String("listen", "", "registration socket path for bprof_client (e.g. /run/bprof.sock)")
	group := fs.String("listen-group", "", "group owning the registration socket")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "least severe level logged: debug, info, warn or error")
	noOffCPU := fs.Bool("no-offcpu", false, "CPU only: leave out the time threads spend off the CPU (wall)")
	fp := fs.Bool("frame-pointers", false, "walk native stacks by frame pointers only, without .eh_frame unwind tables")
	mem := fs.Bool("memory", false, "add memory profiles (alloc_*, inuse_*): -p targets on CPython 3.14+ are attached, registered processes (bprof_client) load the sampler themselves")
	allocBytes := fs.String("alloc-sample-bytes", "512KiB", "--memory: mean bytes allocated between two sampled allocations")
	matchComm := fs.String("match-comm", "", "system-wide: profile only processes whose name (comm) matches this regular expression")
	matchCmdline := fs.String("match-cmdline", "", "system-wide: profile only processes whose command line matches this regular expression")
	matchCgroup := fs.String("match-cgroup", "", "system-wide: profile only processes with a cgroup path matching this regular expression")
	pythonOnly := fs.Bool("python-only", true, "system-wide: profile only processes that run CPython (--python-only=false for every process)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	allocSize, err := parseBytes(*allocBytes)
	if err != nil {
		return nil, usageError{fmt.Errorf("--alloc-sample-bytes: %w", err)}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	c := &agentConfig{outputDir: *outDir, logFormat: *logFormat, noOffCPU: *noOffCPU, fp: *fp, memory: *mem, allocSize: allocSize}
	systemWide := len(*pids) == 0 && *listen == ""
	if *outDir == "" && *url == "" {
		return nil, usageError{errors.New("no destination: give --output-dir DIR or --upload-url URL")}
	}
	if *url == "" && *spoolDir != "" {
		return nil, usageError{errors.New("--spool-dir needs --upload-url")}
	}
	if *group != "" && *listen == "" {
		return nil, usageError{errors.New("--listen-group needs --listen")}
	}
	if *logFormat != "text" && *logFormat != "json" {
		return nil, usageError{fmt.Errorf("log format %q: want text or json", *logFormat)}
	}
	if err := c.logLevel.UnmarshalText([]byte(*logLevel)); err != nil || strings.ContainsAny(*logLevel, "+-") {
		return nil, usageError{fmt.Errorf("log level %q: want debug, info, warn or error", *logLevel)}
	}
	if *rate <= 0 || *rate > 10000 {
		return nil, usageError{fmt.Errorf("rate %d: want 1 to 10000", *rate)}
	}
	for _, pid := range *pids {
		if pid <= 0 {
			return nil, usageError{fmt.Errorf("pid %d: not a process id", pid)}
		}
	}
	p, err := parseDuration(*period)
	if err != nil {
		return nil, usageError{fmt.Errorf("--period: %w", err)}
	}
	t, err := parseDuration(*timeout)
	if err != nil {
		return nil, usageError{fmt.Errorf("--upload-timeout: %w", err)}
	}
	lm, err := parseLabels(*labels)
	if err != nil {
		return nil, usageError{err}
	}
	max, err := parseSize(*spoolMax)
	if err != nil {
		return nil, usageError{fmt.Errorf("--spool-max: %w", err)}
	}
	filter, err := parseFilter(*matchComm, *matchCmdline, *matchCgroup, *pythonOnly)
	if err != nil {
		return nil, usageError{err}
	}
	if !systemWide && (filter.Comm != nil || filter.Cmdline != nil || filter.Cgroup != nil || fs.Changed("python-only")) {
		return nil, usageError{errors.New("--match-comm, --match-cmdline, --match-cgroup and --python-only choose processes in system-wide mode: leave out -p and --listen, or the filter")}
	}
	if p > 0 && p < agent.MinPeriod {
		return nil, usageError{fmt.Errorf("--period %s: at least %s (and 10s or more outside tests)", p, agent.MinPeriod)}
	}
	if p > 0 && p < time.Second {
		c.warnings = append(c.warnings, fmt.Sprintf("--period %s is under 1s: each batch then costs more to cut, encode and send than it tells; use 10s or more outside tests", p))
	}
	c.opts = agent.Options{ApplicationName: *app, Period: p, UploadTimeout: t, Labels: lm, PIDs: *pids,
		Rate: *rate, Listen: *listen, ListenGroup: *group, SystemWide: systemWide, Filter: filter}
	if *url != "" {
		c.py = agent.PyroscopeOptions{URL: *url, SpoolDir: *spoolDir, SpoolMax: max, TenantID: *tenant}
		if _, err := agent.NewPyroscopeSink(c.py); err != nil { // checks the URL only
			return nil, usageError{err}
		}
	}
	return c, nil
}

// parseFilter compiles the system-wide filter flags.
func parseFilter(comm, cmdline, cgroup string, pythonOnly bool) (agent.Filter, error) {
	var f agent.Filter
	for _, e := range []struct {
		flag, expr string
		dst        **regexp.Regexp
	}{{"--match-comm", comm, &f.Comm}, {"--match-cmdline", cmdline, &f.Cmdline}, {"--match-cgroup", cgroup, &f.Cgroup}} {
		if e.expr == "" {
			continue
		}
		re, err := regexp.Compile(e.expr)
		if err != nil {
			return f, fmt.Errorf("%s %q: not a regular expression (Go syntax): %v", e.flag, e.expr, err)
		}
		*e.dst = re
	}
	f.AllProcesses = !pythonOnly
	return f, nil
}

// labelKeyRE is what a --label key may be: a Pyroscope label name. (A
// registered process's keys are laxer, and renamed for Pyroscope; a flag
// can simply be fixed.)
var labelKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// parseLabels turns key=value flags into a map; a key given twice is an error.
func parseLabels(kvs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", kv)
		}
		if !labelKeyRE.MatchString(k) {
			return nil, fmt.Errorf("label key %q: use letters, digits, '_' and '.', not starting with a digit", k)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("label %q given twice", k)
		}
		m[k] = v
	}
	if err := agent.CheckLabels(m); err != nil {
		return nil, err
	}
	return m, nil
}

// parseSize reads a byte count: 1000, 64K, 64KiB, 10M, 10MiB, 1G, 1GiB.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1}, {"", 1},
	}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n <= 0 || n > (1<<62)/u.mult {
			break
		}
		return n * u.mult, nil
	}
	return 0, fmt.Errorf("size %q: want a positive number of bytes, e.g. 64MiB", s)
}

func newAgentLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

const agentSynopsis = `agent [-p PID...] [--listen PATH] (--output-dir DIR | --upload-url URL) [flags]

Profiles services continuously and ships one labelled batch per process and
period to a directory, a Pyroscope server, or both (docs/AGENT.md).

Examples:
  sudo bprof agent -p 4242 --application-name ledger --output-dir /var/lib/bprof
  sudo bprof agent --application-name host-a --upload-url http://pyroscope:4040`

func runAgent(args []string, stdout, stderr io.Writer) error {
	// The first SIGINT or SIGTERM stops the agent cleanly; a second one
	// while it stops makes it exit at once (runAgentWith).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	again := make(chan os.Signal, 1)
	go func() {
		<-sigs
		cancel()
		again <- <-sigs
	}()
	return runAgentWith(ctx, again, args, stderr)
}

// runAgentContext runs the agent until ctx is done, then stops it: the last
// partial batches are shipped before it returns.
func runAgentContext(ctx context.Context, args []string, stderr io.Writer) error {
	return runAgentWith(ctx, nil, args, stderr)
}

// runAgentWith is runAgentContext where a value on hurry (a second signal)
// ends the process at once, leaving the spool as it is.
func runAgentWith(ctx context.Context, hurry <-chan os.Signal, args []string, stderr io.Writer) error {
	c, err := parseAgentFlags(args, stderr)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("bprof needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs: run it with sudo")
	}
	log := newAgentLogger(stderr, c.logFormat, c.logLevel)
	log.Info("agent starting", "pid", os.Getpid())
	if hurry != nil {
		go exitOnSecondSignal(hurry, log, c)
	}
	for _, w := range c.warnings {
		log.Warn(w)
	}
	opts := c.opts
	opts.Log = log
	var py *agent.PyroscopeSink
	if c.outputDir != "" {
		ds, err := agent.NewDirSink(c.outputDir, log)
		if err != nil {
			return err
		}
		opts.Sinks = append(opts.Sinks, ds)
	}
	if c.py.URL != "" {
		c.py.Log = log
		if py, err = agent.NewPyroscopeSink(c.py); err != nil {
			return usageError{err}
		}
		opts.Sinks = append(opts.Sinks, py)
		go probeUploadURL(c.py.URL, min(opts.UploadTimeout, 3*time.Second), c.py.SpoolDir, log)
	}
	startUp()
	sess, err := profiler.NewSession(profiler.Options{Rate: opts.Rate, OffCPU: !c.noOffCPU, FramePointers: c.fp, Warn: func(msg string) { log.Warn(msg) },
		// The agent logs each target's exit itself ("target exited", at
		// info), once; the session's warning would say it again.
		Exited: func(int, time.Duration) {},
		Memory: c.memory, AllocSampleBytes: c.allocSize})
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		// Stopped while loading: nothing was sampled, nothing to ship.
		sess.Close()
		log.Info("agent stopped before it started")
		return nil
	}
	opts.Source = sess
	if c.memory {
		opts.Memory = agentMemory{sess: sess, sampleBytes: c.allocSize}
	}
	a, err := agent.New(opts)
	if err != nil {
		sess.Close()
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	log.Info("agent started", "pids", opts.PIDs, "listen", opts.Listen, "system_wide", opts.SystemWide, "period", opts.Period)
	settle()
	<-ctx.Done()
	log.Info("stopping: flushing the last batches")
	t0 := time.Now()
	err = a.Stop()
	if py != nil {
		cn := py.Counts()
		log.Info("upload counters", "sent", cn.Sent, "retries", cn.Retries, "rejected", cn.Rejected, "spool_dropped", cn.SpoolDropped)
	}
	log.Info("agent stopped", "took", time.Since(t0).Round(time.Millisecond))
	return err
}

// exitOnSecondSignal ends the process at once when a second signal comes:
// an operator who asks twice does not want to wait for a slow endpoint.
// Uploads not yet delivered stay in the spool directory (every upload is
// written there before it is sent) and go out at the next start.
func exitOnSecondSignal(hurry <-chan os.Signal, log *slog.Logger, c *agentConfig) {
	sig := <-hurry
	if c.opts.Listen != "" {
		os.Remove(c.opts.Listen)
	}
	switch {
	case c.py.URL == "":
		log.Warn("second signal: exiting at once; the batches of the current period are lost", "signal", sig.String())
	case c.py.SpoolDir != "":
		log.Warn("second signal: exiting at once; undelivered uploads stay in the spool for the next start", "signal", sig.String(), "spool_dir", c.py.SpoolDir)
	default:
		log.Warn("second signal: exiting at once; undelivered uploads are lost (no --spool-dir)", "signal", sig.String())
	}
	os.Exit(1)
}

// probeUploadURL warns once when the upload server cannot be reached at
// start: the agent still works, spooling batches until it answers, but the
// operator should know now rather than at the first failed upload.
func probeUploadURL(raw string, timeout time.Duration, spoolDir string, log *slog.Logger) {
	u, err := url.Parse(raw)
	if err != nil {
		return // NewPyroscopeSink refused it already
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	conn, err := net.DialTimeout("tcp", host, timeout)
	if err == nil {
		conn.Close()
		return
	}
	where := "memory (--spool-max)"
	if spoolDir != "" {
		where = spoolDir
	}
	log.Warn("upload URL unreachable at start: batches wait in the spool until it answers", "url", raw, "spool", where, "err", err)
}
