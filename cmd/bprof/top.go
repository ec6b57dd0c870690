package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/profiler"
	"github.com/bprof/bprof/pkg/top"
	"golang.org/x/sys/unix"
)

const topSynopsis = `top -p PID [--interval 1s] [--wall]

A live view of where a process spends its time, refreshed every interval:
functions by their share of the interval, own (the innermost Python frame,
or the leaf where no Python frame is) and total (with their callees), with
file:line, the time summed since the start, samples per second and the
threads seen. --wall counts wall time (on and off the CPU) instead of CPU.

Keys: 1 2 3 4 sort by %own, %total, own time, total time; t shows the next
thread alone, a all threads again; q (or Ctrl-C) quits. When standard output
is not a terminal, a plain table is printed each interval instead (-n stops
after N of them).

Examples:
  sudo bprof top -p 4242
  sudo bprof top -p 4242 --wall --interval 2s
  sudo bprof top -p 4242 -n 3 > top.txt`

func runTop(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("top", topSynopsis, stderr)
	pid := fs.IntP("pid", "p", 0, "process to watch")
	interval := fs.String("interval", "1s", "refresh period: 1s, 500ms or plain seconds")
	wall := fs.Bool("wall", false, "count wall time (on and off the CPU) instead of CPU time")
	iterations := fs.IntP("iterations", "n", 0, "stop after N refreshes (default: until q, Ctrl-C or the process exits)")
	rate := fs.IntP("rate", "r", 100, "samples per second of CPU time per thread")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %s: give the process as -p PID", fs.Arg(0))}
	}
	if *pid == 0 {
		return usageError{errors.New("no target: give -p PID")}
	}
	every, err := parseDuration(*interval)
	if err != nil || every == 0 {
		return usageError{fmt.Errorf("--interval %q: use 1s, 500ms or plain seconds", *interval)}
	}
	if !process.Exists(*pid) {
		return fmt.Errorf("no process with PID %d: check the PID (ps -p %d)", *pid, *pid)
	}
	if os.Geteuid() != 0 {
		return errors.New("bprof needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs: run it with sudo")
	}

	var warnings warnLog
	startUp()
	sess, err := profiler.NewSession(profiler.Options{Rate: *rate, OffCPU: *wall, Warn: warnings.add})
	if err != nil {
		return err
	}
	defer sess.Close()
	if err := sess.Add(*pid); err != nil {
		return err
	}
	settle()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	scr := newScreen(stdout)
	if scr.tty {
		restore, err := scr.start()
		if err != nil {
			return err
		}
		defer restore()
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sess.Run(runCtx) }()

	v := topView{pid: *pid, name: commOf(*pid), sampleType: "cpu", table: top.NewTable(), every: every, keys: scr.tty}
	if *wall {
		v.sampleType = "wall"
	}
	if scr.tty {
		scr.draw(&v, warnings.last(2)) // the frame at once; rows come with the first interval
	}
	// The first refresh comes after half an interval, so the screen has
	// rows soon after the (slow) start; then one every interval.
	tick := time.NewTimer(every / 2)
	defer tick.Stop()
	began := time.Now()
	for n := 0; ; {
		select {
		case <-ctx.Done():
			cancel()
			return <-done
		case err := <-done:
			// The target exited: show what came last, if anything did
			// (an empty last interval would replace the last table with
			// zeros), then say why we stop.
			if v.update(sess, time.Since(began), true) {
				scr.draw(&v, warnings.last(2))
			}
			if scr.tty {
				scr.stop()
			}
			fmt.Fprintf(stderr, "bprof top: process %d exited\n", *pid)
			return err
		case k := <-scr.keys:
			if !v.key(k) {
				cancel()
				return <-done
			}
			scr.draw(&v, warnings.last(2))
			continue
		case <-tick.C:
			tick.Reset(every)
		}
		v.update(sess, time.Since(began), false)
		scr.draw(&v, warnings.last(2))
		if n++; *iterations > 0 && n >= *iterations {
			cancel()
			return <-done
		}
	}
}

// warnLog keeps the session's warnings, which come from its goroutines.
type warnLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnLog) add(msg string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, msg)
	w.mu.Unlock()
}

// last returns the last n warnings.
func (w *warnLog) last(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs[max(len(w.msgs)-n, 0):])
}

func commOf(pid int) string {
	n, _ := process.Comm(pid, pid)
	return n
}

// topView is what the screen shows.
type topView struct {
	pid        int
	name       string
	sampleType string
	every      time.Duration
	elapsed    time.Duration
	table      *top.Table
	sortBy     top.SortBy
	tid        int64 // 0: all threads
	threads    map[int64]string
	samples    int64
	err        error
	keys       bool // keys are read (a terminal): the header names them
}

// update cuts the session's profile and adds it to the table. The last
// interval, cut when the target exited, is left out if it has no samples;
// update reports whether it added one.
func (v *topView) update(sess *profiler.Session, elapsed time.Duration, last bool) bool {
	p, start, end := sess.Cut()
	in, err := top.Summarize(p, top.Options{SampleType: v.sampleType, TID: v.tid})
	if err != nil {
		v.err = err
		return true
	}
	if last && in.Samples == 0 {
		return false
	}
	v.elapsed = elapsed
	v.table.Add(in)
	if v.threads == nil {
		v.threads = map[int64]string{}
	}
	// Threads seen: by all threads, even when one is shown.
	all, _ := top.Summarize(p, top.Options{SampleType: v.sampleType})
	if all != nil {
		for tid, n := range all.Threads {
			v.threads[tid] = n
		}
	}
	v.samples = in.Samples
	if d := end.Sub(start); d > 0 {
		v.samples = int64(float64(in.Samples) / d.Seconds())
	}
	return true
}

// key handles a key; false means quit.
func (v *topView) key(k byte) bool {
	switch k {
	case 'q', 'Q', 3: // 3: Ctrl-C where the terminal did not make it a signal
		return false
	case '1', '2', '3', '4':
		v.sortBy = top.SortBy(k - '1')
	case 't':
		tids := make([]int64, 0, len(v.threads))
		for tid := range v.threads {
			tids = append(tids, tid)
		}
		slices.Sort(tids)
		if len(tids) == 0 {
			return true
		}
		i, _ := slices.BinarySearch(tids, v.tid+1)
		v.tid = tids[i%len(tids)]
		v.table = top.NewTable()
	case 'a':
		if v.tid != 0 {
			v.tid = 0
			v.table = top.NewTable()
		}
	}
	return true
}

// lines renders the view as text lines, at most width wide (0: no limit),
// and at most height of them (0: no limit).
func (v *topView) lines(width, height int) []string {
	thread := "all threads"
	if v.tid != 0 {
		thread = fmt.Sprintf("thread %d %q", v.tid, v.threads[v.tid])
	}
	kind := "CPU"
	if v.sampleType == "wall" {
		kind = "wall time"
	}
	keys := ""
	if v.keys {
		keys = "   keys: 1-4 sort, t next thread, a all threads, q quit"
	}
	out := []string{
		fmt.Sprintf("bprof top: pid %d (%s), %s, %s, every %s, %s elapsed", v.pid, v.name, kind, thread, v.every, v.elapsed.Round(time.Second)),
		fmt.Sprintf("samples/s %d   threads seen %d   sorted by %s%s", v.samples, len(v.threads), v.sortBy, keys),
		"",
		fmt.Sprintf("%6s %6s %9s %9s  %s", "%own", "%total", "own", "total", "function (file:line)"),
	}
	if v.err != nil {
		out = append(out, "  "+v.err.Error())
	}
	n := 0
	if height > 0 {
		n = max(height-len(out), 1)
	}
	for _, r := range v.table.Rows(v.sortBy, n) {
		line := fmt.Sprintf("%6.1f %6.1f %9s %9s  %s", r.OwnPct, r.TotPct, seconds(r.OwnSum), seconds(r.TotSum), r.Name)
		if r.Where != "" {
			line += " (" + r.Where + ")"
		}
		out = append(out, line)
	}
	if width > 0 {
		for i, l := range out {
			if len(l) > width {
				out[i] = l[:width]
			}
		}
	}
	return out
}

func seconds(ns int64) string {
	return fmt.Sprintf("%.2fs", float64(ns)/1e9)
}

// plainRows bounds a plain table: its header and the 30 largest rows.
const plainRows = 4 + 30

// screen draws the view: in place with ANSI escapes on a terminal, as a
// plain table each time otherwise.
type screen struct {
	w     io.Writer
	out   *os.File // the terminal, when tty
	in    *os.File // where keys come from, when tty
	tty   bool
	keys  chan byte
	saved *unix.Termios
}

func newScreen(w io.Writer) *screen {
	s := &screen{w: w, keys: make(chan byte, 16)}
	if f, ok := w.(*os.File); ok && isTerminal(f) && isTerminal(os.Stdin) {
		s.out, s.in, s.tty = f, os.Stdin, true
	}
	return s
}

// ANSI escapes: the alternate screen, cursor home and clear, cursor hidden.
const (
	enterScreen = "\x1b[?1049h\x1b[?25l"
	leaveScreen = "\x1b[?25h\x1b[?1049l"
	home        = "\x1b[H\x1b[2J"
)

// start puts the terminal in cbreak mode (keys come one at a time, not
// echoed; Ctrl-C still a signal) on the alternate screen; the returned
// function puts it back as it was.
func (s *screen) start() (restore func(), err error) {
	fd := int(s.in.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read terminal settings: %w", err)
	}
	saved := *t
	s.saved = &saved
	t.Lflag &^= unix.ICANON | unix.ECHO
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return nil, fmt.Errorf("set terminal to cbreak: %w", err)
	}
	io.WriteString(s.out, enterScreen)
	go func() {
		r := bufio.NewReader(s.in)
		for {
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			s.keys <- b
		}
	}()
	return s.stop, nil
}

// stop restores the terminal; it may be called more than once.
func (s *screen) stop() {
	if s.saved == nil {
		return
	}
	io.WriteString(s.out, leaveScreen)
	unix.IoctlSetTermios(int(s.in.Fd()), unix.TCSETS, s.saved)
	s.saved = nil
	s.tty = false
}

func (s *screen) draw(v *topView, warnings []string) {
	if !s.tty {
		for _, l := range v.lines(0, plainRows) {
			fmt.Fprintln(s.w, l)
		}
		fmt.Fprintln(s.w)
		return
	}
	width, height := 0, 0
	if ws, err := unix.IoctlGetWinsize(int(s.out.Fd()), unix.TIOCGWINSZ); err == nil {
		width, height = int(ws.Col), int(ws.Row)
	}
	var b strings.Builder
	b.WriteString(home)
	ls := v.lines(width, height-len(warnings))
	for _, w := range warnings {
		ls = append(ls, "bprof: "+w)
	}
	for i, l := range ls {
		if i > 0 {
			b.WriteString("\n") // the terminal adds the \r (ONLCR)
		}
		b.WriteString(l)
	}
	io.WriteString(s.out, b.String())
}
