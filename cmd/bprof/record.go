package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bprof/bprof/pkg/container"
	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/profiler"
	"golang.org/x/sys/unix"
)

func runRecord(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("record", "record -p PID [-p PID...] [-d DURATION] [-r HZ] [-o FILE]", stderr)
	pids := fs.IntSliceP("pid", "p", nil, "process to profile (repeat for several)")
	dur := fs.StringP("duration", "d", "", "how long to record: 30s, 2m or plain seconds (default: until Ctrl-C or the targets exit)")
	rate := fs.IntP("rate", "r", 100, "samples per second of CPU time per thread")
	out := fs.StringP("output", "o", "profile.pb.gz", "pprof file to write")
	noOffCPU := fs.Bool("no-offcpu", false, "CPU only: leave out the time threads spend off the CPU (the wall/nanoseconds type)")
	fp := fs.Bool("frame-pointers", false, "walk native stacks by frame pointers only, without .eh_frame unwind tables (cheaper; wrong below the first frame in code built without frame pointers)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(*pids) == 0 {
		return usageError{errors.New("no target: give one or more -p PID")}
	}
	d, err := parseDuration(*dur)
	if err != nil {
		return usageError{err}
	}
	for _, pid := range *pids {
		if pid <= 0 || !process.Exists(pid) {
			return fmt.Errorf("no process with PID %d: check the PID (ps -p %d)", pid, pid)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("bprof needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs: run it with sudo")
	}
	if err := export.CheckWritable(*out); err != nil {
		return err
	}

	warn := func(msg string) { fmt.Fprintf(stderr, "bprof: %s\n", msg) }
	sess, err := profiler.NewSession(profiler.Options{Rate: *rate, OffCPU: !*noOffCPU, FramePointers: *fp, Warn: warn})
	if err != nil {
		return err
	}
	defer sess.Close()
	where := map[int]map[string]string{} // container labels by pid, read while the targets live
	for _, pid := range *pids {
		if err := sess.Add(pid); err != nil {
			return err
		}
		if info, err := container.ForPID(pid); err == nil {
			where[pid] = info.Labels()
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	status := startStatus(stderr, sess)
	runErr := sess.Run(ctx)
	status.stop()
	p, start, end := sess.Cut()
	export.AddLabels(p, func(pid int) map[string]string { return where[pid] })
	st, statErr := sess.Stats()
	if err := export.WriteFile(*out, p); err != nil {
		return err
	}
	c := sess.Counts()
	fmt.Fprintf(stderr, "bprof: wrote %s: %d samples from %d threads over %s\n",
		*out, c.Samples, c.Threads, end.Sub(start).Round(10*time.Millisecond))
	if statErr == nil {
		fmt.Fprintf(stderr, "bprof: lost %d (ring buffer full); stack read errors: kernel %d, user %d; Python: %d read errors, %d truncated, %d unknown threads\n",
			st.RingFull, st.KernelStackErrors, st.UserStackErrors, st.PyReadErrors, st.PyTruncated, st.PyUnknownThreads)
		if !*fp {
			u := sess.UnwindStats()
			fmt.Fprintf(stderr, "bprof: native unwinding: tables for %d files (%d rows), %d without; frame-pointer steps: %d in files with no table, %d for rules bprof cannot follow\n",
				u.Files, u.Rows, u.Failed, st.UnwindNoTable, st.UnwindUnsupported)
		}
	}
	return runErr
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
