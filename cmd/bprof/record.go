package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bprof/bprof/pkg/container"
	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/flamegraph"
	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/profiler"
	"golang.org/x/sys/unix"
)

const recordSynopsis = `record -p PID [-p PID...] [flags]
       bprof record [flags] -- COMMAND [ARGS...]

Samples processes for a while and writes a profile. With -- COMMAND, bprof
starts the command and profiles it from its first instruction, passes the
signals it gets on to it, writes the profile when the command exits (or on
Ctrl-C) and exits with the command's status.

The format of -o follows its extension: .svg (flame graph), .html, .json
(speedscope), .folded or .txt (folded stacks); .pb.gz and anything else is
gzipped pprof. --format overrides it.

Examples:
  sudo bprof record -p 4242 -d 10s -o prof.pb.gz
  sudo bprof record -p 4242 -d 10s -o prof.pb.gz --svg prof.svg
  sudo bprof record -o app.svg -- python3 app.py --port 8080
  sudo bprof record --subprocesses -o web.pb.gz -- gunicorn -w 4 app:wsgi`

func runRecord(args []string, stdout, stderr io.Writer) error {
	stderr = serialized(stderr)
	fs := newFlagSet("record", recordSynopsis, stderr)
	pids := fs.IntSliceP("pid", "p", nil, "process to profile (repeat for several)")
	dur := fs.StringP("duration", "d", "", "how long to record: 30s, 2m or plain seconds (default: until Ctrl-C or the targets exit; a COMMAND still running then is sent SIGTERM)")
	rate := fs.IntP("rate", "r", 100, "samples per second of CPU time per thread")
	out := fs.StringP("output", "o", "profile.pb.gz", "file to write; its extension picks the format (.svg .html .json .folded .txt, else pprof)")
	format := fs.String("format", "", "format of -o whatever its extension: pprof, svg, html, folded or speedscope")
	svg := fs.String("svg", "", "also write a flame graph (SVG) to this `FILE`")
	subprocs := fs.Bool("subprocesses", false, "also profile the children the targets start (fork, exec: multiprocessing, gunicorn workers), found by polling /proc every 100 ms")
	noOffCPU := fs.Bool("no-offcpu", false, "CPU only: leave out the time threads spend off the CPU (the wall/nanoseconds type)")
	fp := fs.Bool("frame-pointers", false, "walk native stacks by frame pointers only, without .eh_frame unwind tables (cheaper; wrong below the first frame in code built without frame pointers)")
	mem := fs.Bool("memory", false, "also record memory profiles (alloc_objects, alloc_space, inuse_objects, inuse_space) of CPython targets: 3.14+ by remote execution, older versions only with bprof_client")
	allocBytes := fs.String("alloc-sample-bytes", "512KiB", "--memory: mean bytes allocated between two sampled allocations (a number, or with KiB/MiB)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sampleBytes, err := parseBytes(*allocBytes)
	if err != nil {
		return usageError{fmt.Errorf("--alloc-sample-bytes: %w", err)}
	}
	rest, command := fs.Args(), []string(nil)
	if n := fs.ArgsLenAtDash(); n >= 0 {
		rest, command = fs.Args()[:n], fs.Args()[n:]
		if len(command) == 0 {
			return usageError{errors.New("no command after --: give one, as in bprof record -- python3 app.py")}
		}
	}
	if len(rest) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q: put a command to run after --, as in bprof record -- python3 app.py", rest[0])}
	}
	if len(*pids) == 0 && command == nil {
		return usageError{errors.New("no target: give one or more -p PID, or a command after --")}
	}
	d, err := parseDuration(*dur)
	if err != nil {
		return usageError{err}
	}
	o, err := outputFor(*out, *format)
	if err != nil {
		return err
	}
	outs := []output{o}
	if *svg != "" {
		outs = append(outs, output{path: *svg, format: flamegraph.SVG})
	}
	for _, pid := range *pids {
		if pid <= 0 || !process.Exists(pid) {
			return fmt.Errorf("no process with PID %d: check the PID (ps -p %d)", pid, pid)
		}
	}
	if command != nil {
		if err := lookCommand(command); err != nil {
			return err
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("bprof needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs: run it with sudo")
	}
	for _, o := range outs {
		if err := o.check(); err != nil {
			return err
		}
	}
	if *mem && command != nil {
		return usageError{errors.New("--memory attaches to running processes: start the command, then bprof record -p PID --memory (CPython 3.14+), or use bprof_client with bprof agent --memory")}
	}
	if *mem {
		// Before the BPF programs load: a target memory profiles cannot
		// reach is a one-line error at once.
		for _, pid := range *pids {
			if err := profiler.CheckMemory(pid); err != nil {
				return err
			}
		}
	}

	// Signals are caught from here on, so a Ctrl-C while the programs load
	// still ends bprof cleanly (with the profile of what there is).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := catchSignals(command != nil, cancel)
	defer sig.stop()

	warn := func(msg string) { fmt.Fprintf(stderr, "bprof: %s\n", msg) }
	startUp()
	sess, err := profiler.NewSession(profiler.Options{Rate: *rate, OffCPU: !*noOffCPU, FramePointers: *fp, Warn: warn,
		Memory: *mem, AllocSampleBytes: sampleBytes})
	if err != nil {
		return err
	}
	// Closed and dropped before the profile is written (below), so that
	// encoding it does not add to the session's memory.
	defer func() {
		if sess != nil {
			sess.Close()
		}
	}()
	where := map[int]map[string]string{} // container labels by pid, read while the targets live
	for _, pid := range *pids {
		if err := sess.Add(pid); err != nil {
			return err
		}
		if *mem {
			if err := sess.AttachMemory(pid); err != nil {
				return err
			}
		}
		if info, err := container.ForPID(pid); err == nil {
			where[pid] = info.Labels()
		}
	}

	var child *runningCommand
	if command != nil {
		if sig.stopped.Load() {
			return errors.New("interrupted before the command started; it was not run")
		}
		if child, err = startCommand(sess, command, stdout, stderr); err != nil {
			return err
		}
		sig.relayTo(child)
		if sig.stopped.Load() {
			// Told to stop while the command was being released: it may
			// have missed the signal.
			child.cmd.Process.Signal(syscall.SIGTERM)
		}
		go func() {
			child.wait()
			cancel()
		}()
	}
	if d > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, d)
		defer cancelTimeout()
	}
	var helpers sync.WaitGroup // goroutines that use sess until ctx ends
	if *subprocs {
		helpers.Go(func() { sess.FollowChildren(ctx, followInterval) })
	}
	if child != nil {
		helpers.Go(func() { sess.AttachWhenPython(ctx, child.pid(), attachInterval) })
	}
	// Start-up (the verifier, symbols, unwind tables) is over: say so, for
	// people and for scripts that wait to start the work they want measured.
	fmt.Fprintf(stderr, "bprof: recording %s; Ctrl-C to stop\n", describeTargets(*pids, child, d))
	settle()
	var status *status
	if child == nil {
		status = startStatus(stderr, sess)
	}
	runErr := sess.Run(ctx)
	if status != nil {
		status.stop()
	}
	p, start, end := sess.Cut()
	export.AddLabels(p, func(pid int) map[string]string { return where[pid] })
	st, statErr := sess.Stats()
	c, u := sess.Counts(), sess.UnwindStats()
	var m profiler.MemoryCounts
	if *mem {
		m = sess.MemoryCounts()
	}
	// The session's tables (symbols, Python code objects, wait sites) are
	// of no more use: let them go before the profile is encoded, which
	// set record's peak RSS with them still held.
	cancel()
	helpers.Wait()
	sess.Close()
	sess = nil
	shedHeap()
	writeErr := writeAll(outs, p)
	if writeErr == nil {
		var names []string
		for _, o := range outs {
			names = append(names, o.path)
		}
		fmt.Fprintf(stderr, "bprof: wrote %s: %d samples from %d threads over %s\n",
			strings.Join(names, " and "), c.Samples, c.Threads, end.Sub(start).Round(10*time.Millisecond))
	}
	if statErr == nil {
		fmt.Fprintf(stderr, "bprof: lost %d (ring buffer full); stack read errors: kernel %d, user %d; Python: %d read errors, %d truncated, %d unknown threads\n",
			st.RingFull, st.KernelStackErrors, st.UserStackErrors, st.PyReadErrors, st.PyTruncated, st.PyUnknownThreads)
		if *mem {
			fmt.Fprintf(stderr, "bprof: memory: sampled %d allocations, %d dropped (one every %s on average); %d frees of sampled blocks, %d sampled blocks live at the end\n",
				m.Sampled, m.Dropped, formatBytes(sampleBytes), m.Frees, m.Live)
			if m.Untracked > 0 {
				fmt.Fprintf(stderr, "bprof: memory: %d sampled blocks not tracked for inuse_* (the sampler could not grow its table)\n", m.Untracked)
			}
		}
		if !*fp {
			fmt.Fprintf(stderr, "bprof: native unwinding: tables for %d files (%d rows), %d without; frame-pointer steps: %d in files with no table, %d for rules bprof cannot follow\n",
				u.Files, u.Rows, u.Failed, st.UnwindNoTable, st.UnwindUnsupported)
		}
		if !*noOffCPU {
			fmt.Fprintf(stderr, "bprof: wall: %d switches; wait stacks: %d reused, %d walked, %d without (out of walks), %d not kept; %d waits summed in the shared table, %d lost (maps full)\n",
				st.Switches, st.WaitCached, st.WaitCaptured, st.WaitUncaptured, st.OffCPUNoSlot, st.WaitSpilled, st.OffCPULost)
		}
	}
	if child != nil {
		code := child.finish(sig.stopped.Load(), warn)
		if writeErr != nil {
			return writeErr
		}
		if runErr != nil {
			return runErr
		}
		if code != 0 {
			return exitStatus(code)
		}
		return nil
	}
	if writeErr != nil {
		return writeErr
	}
	return runErr
}

// serialized makes w safe for the writers a recording has at once (its
// own lines, the session's warnings, a command's output). A file is left
// as it is: the kernel orders its writes, and a command given the file
// itself keeps its terminal.
func serialized(w io.Writer) io.Writer {
	if _, ok := w.(*os.File); ok {
		return w
	}
	return &lockedWriter{w: w}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// attachInterval is how often a command that is not (yet) a CPython is
// looked at again: its first Python samples come at most this late.
const attachInterval = 20 * time.Millisecond

// followInterval is how often --subprocesses looks for new children.
const followInterval = 100 * time.Millisecond

// parseBytes accepts a byte count: 524288, 512KiB, 1MiB (also K, KB, M, MB,
// all powers of 1024).
func parseBytes(s string) (int, error) {
	t := strings.TrimSpace(s)
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"KB", 1 << 10}, {"K", 1 << 10}, {"MiB", 1 << 20}, {"MB", 1 << 20}, {"M", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q: want a positive number of bytes such as 524288, 512KiB or 1MiB", s)
	}
	return n * mult, nil
}

// formatBytes writes n as KiB or MiB when it is a whole number of them.
func formatBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// parseDuration accepts Go durations (30s, 2m, 1h30m) and plain seconds (10, 2.5).
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs <= 0 {
			return 0, fmt.Errorf("duration %q: must be positive", s)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %q: use 30s, 2m or plain seconds", s)
	}
	return d, nil
}

// status prints one line each second while recording: refreshed in place on a
// terminal, left alone (no output) otherwise so logs stay clean.
type status struct {
	done chan struct{}
	wait chan struct{}
}

func startStatus(w io.Writer, sess *profiler.Session) *status {
	st := &status{done: make(chan struct{}), wait: make(chan struct{})}
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		close(st.wait)
		return st
	}
	go func() {
		defer close(st.wait)
		start := time.Now()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-st.done:
				fmt.Fprint(w, "\r"+strings.Repeat(" ", 79)+"\r")
				return
			case <-t.C:
			}
			c := sess.Counts()
			drops := uint64(0)
			if s, err := sess.Stats(); err == nil {
				drops = s.Lost()
			}
			fmt.Fprintf(w, "\rrecording %s  samples %d  threads %d  drops %d ",
				time.Since(start).Round(time.Second), c.Samples, c.Threads, drops)
		}
	}()
	return st
}

func (st *status) stop() {
	close(st.done)
	<-st.wait
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// describeTargets says what a recording covers: "PID 42 for 10s",
// "python3 (PID 43)".
func describeTargets(pids []int, child *runningCommand, d time.Duration) string {
	var b strings.Builder
	if len(pids) > 0 {
		if len(pids) == 1 {
			b.WriteString("PID ")
		} else {
			b.WriteString("PIDs ")
		}
		for i, pid := range pids {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(pid))
		}
	}
	if child != nil {
		if b.Len() > 0 {
			b.WriteString(" and ")
		}
		fmt.Fprintf(&b, "%s (PID %d)", child.name, child.pid())
	}
	if d > 0 {
		b.WriteString(" for " + d.String())
	}
	return b.String()
}
