package profiler

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
)

// TestThreadNamesPruned: a thread that exits mid-period is still named in
// that period's profile, and forgotten only two Cuts after the watch tick
// finds it gone; the names and late stacks of a process with thread churn
// (200 threads born and gone) shrink back to its live threads.
func TestThreadNamesPruned(t *testing.T) {
	testenv.RequireRoot(t)
	py := nativeIDPython(t)
	proc := startScript(t, py, "thread_churn.py", "10")
	pid := proc.Cmd.Process.Pid
	s, stop := runningSession(t, proc)

	line := func(want string) string {
		t.Helper()
		l, err := proc.Stdout.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, want) {
			t.Fatalf("target said %q (%v), want %q", l, err, want)
		}
		return strings.TrimSpace(l)
	}
	tid, err := strconv.Atoi(strings.TrimPrefix(line("lastword "), "lastword "))
	if err != nil {
		t.Fatal(err)
	}
	k := threadKey{pid, tid}
	// wait polls cond, under s.mu, at the watch tick's pace.
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			s.mu.Lock()
			ok := cond()
			s.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30 s", what)
			}
		}
	}
	// Named by threading before it runs: a thread's first samples may come
	// before threading registers it and carry its OS name (a race of its
	// start, not of this test). What is tested is that the name outlives
	// the thread until its period is cut.
	wait("lastword named by threading", func() bool { return s.names[k].python })
	if _, err := io.WriteString(proc.Stdin, "spin\n"); err != nil {
		t.Fatal(err)
	}
	line("lastword gone")

	p, _, _ := s.Cut()
	samples := 0
	for _, smp := range p.Sample {
		if id := smp.NumLabel["thread_id"]; len(id) == 1 && id[0] == int64(tid) {
			samples++
			if got := smp.Label["thread_name"]; len(got) != 1 || got[0] != "lastword" {
				t.Errorf("a sample of thread %d, which exited in this period, is named %v, want lastword", tid, got)
			}
		}
	}
	if samples == 0 {
		t.Errorf("no sample of thread %d (lastword) in the period it exited in", tid)
	}

	// The first tick of the next period finds it gone, and the first tick
	// two Cuts later forgets it: not before.
	wait("lastword found gone by the watch tick", func() bool { _, ok := s.gone[k]; return ok })
	s.mu.Lock()
	marked := s.gone[k]
	s.mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		s.mu.Lock()
		_, named := s.names[k]
		period := s.period
		s.mu.Unlock()
		if !named {
			if period < marked+2 {
				t.Errorf("lastword forgotten in period %d, found gone in %d: two Cuts must pass", period, marked)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lastword not forgotten within 30 s of Cuts")
		}
		s.Cut()
	}
	s.mu.Lock()
	if s.threads[tid] {
		t.Errorf("thread %d (lastword) still counted as seen after its name was forgotten", tid)
	}
	s.mu.Unlock()

	line("churned")
	count := func() (names, late int) {
		for k := range s.names {
			if k.pid == pid {
				names++
			}
		}
		for k := range s.late {
			if k.pid == pid {
				late++
			}
		}
		return names, late
	}
	s.mu.Lock()
	peakNames, peakLate := count()
	s.mu.Unlock()
	t.Logf("after the churn: %d names, %d late stacks", peakNames, peakLate)
	if peakNames < 100 {
		t.Errorf("%d names after 200 threads lived 0.3 s each: the tick did not name them, the test proves nothing", peakNames)
	}
	// The last batch is found gone in this period or the next: Cut until
	// two Cuts have passed for it, and no more are known than live.
	live, err := process.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		s.Cut()
		s.mu.Lock()
		n, l := count()
		s.mu.Unlock()
		if n <= len(live) && l <= len(live) {
			t.Logf("pruned to %d names, %d late stacks (%d live threads)", n, l, len(live))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d names and %d late stacks of %d after 30 s, want at most its %d live threads", n, l, pid, len(live))
		}
		time.Sleep(250 * time.Millisecond) // a tick or so between Cuts
	}
	stop()
}

// TestRemoveForgetsWaits: the named wait sites of a process, kept per
// process, go when it is removed.
func TestRemoveForgetsWaits(t *testing.T) {
	testenv.RequireRoot(t)
	py := interpreters(t)[0]
	proc := startScript(t, py, "wall.py", "30")
	pid := proc.Cmd.Process.Pid
	s, stop := runningSession(t, proc)
	waits := func() int {
		s.periodMu.Lock()
		defer s.periodMu.Unlock()
		n := 0
		for k := range s.waits {
			if k.pid == pid {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); waits() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no wait site named within 30 s of Cuts")
		}
		s.Cut() // wait sites are named at the Cut
	}
	t.Logf("%d wait sites named", waits())
	if err := s.Remove(pid); err != nil {
		t.Fatal(err)
	}
	if n := waits(); n != 0 {
		t.Errorf("%d wait sites of %d kept after Remove", n, pid)
	}
	stop()
}

// nativeIDPython is a CPython 3.8+ outside a chroot, whose threads know
// their native TIDs (Thread.native_id), or skips.
func nativeIDPython(t *testing.T) interpreter {
	t.Helper()
	var py interpreter
	for _, in := range interpreters(t) {
		if in.minor >= 8 && in.chroot == "" {
			py = in // the last such; any will do
		}
	}
	if py.path == "" {
		testenv.Skip(t, "needs a CPython 3.8+ outside a chroot (native_id)")
	}
	t.Logf("Python %s", py.name)
	return py
}

// runningSession profiles proc (wall time included) in a Run of its own,
// from the moment it is released; stop ends the Run and fails the test on
// its error. The session closes when the test ends.
func runningSession(t *testing.T, proc *testenv.Process) (s *Session, stop func()) {
	t.Helper()
	s, err := NewSession(Options{OffCPU: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Add(proc.Cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	release(t, proc)
	return s, func() {
		t.Helper()
		cancel()
		if err := <-runErr; err != nil {
			t.Fatal(err)
		}
	}
}

// TestThreadNamedLate: a thread sampled before threading knew it is labelled
// with its threading name in all of its samples, not with its OS name in
// those taken before.
func TestThreadNamedLate(t *testing.T) {
	testenv.RequireRoot(t)
	py := nativeIDPython(t)
	proc := startScript(t, py, "late_name.py")
	s, stop := runningSession(t, proc)
	var tid int
	for _, want := range []string{"tid ", "done"} {
		l, err := proc.Stdout.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, want) {
			t.Fatalf("target said %q (%v), want %q", l, err, want)
		}
		if want == "tid " {
			if tid, err = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(l, want))); err != nil {
				t.Fatal(err)
			}
		}
	}
	p, _, _ := s.Cut()
	stop()
	names := map[string]int64{}
	for _, smp := range p.Sample {
		if id := smp.NumLabel["thread_id"]; len(id) == 1 && id[0] == int64(tid) {
			names[strings.Join(smp.Label["thread_name"], ",")] += smp.Value[0]
		}
	}
	t.Logf("samples of thread %d by name: %v", tid, names)
	// A second on the CPU: ~100 samples, half before it had the name.
	if names["named_late"] < 20 || len(names) != 1 {
		t.Errorf("thread %d's samples by name %v, want all (≥ 20) under named_late", tid, names)
	}
}

// TestIdleWaitSitesDropped: a process that keeps starting threads keeps
// adding wait sites (each thread waits on its own stack); the session keeps
// those of the last periods, not all it ever named.
func TestIdleWaitSitesDropped(t *testing.T) {
	testenv.RequireRoot(t)
	py := interpreters(t)[0]
	proc := startScript(t, py, "thread_stream.py")
	pid := proc.Cmd.Process.Pid
	s, stop := runningSession(t, proc)
	ever := map[waitKey]bool{}
	held := 0
	const cuts = 4 * (waitIdlePeriods + 1)
	for i := 0; i < cuts; i++ {
		time.Sleep(200 * time.Millisecond)
		s.Cut()
		s.periodMu.Lock()
		held = 0
		for k := range s.waits {
			if k.pid == pid {
				ever[k] = true
				held++
			}
		}
		s.periodMu.Unlock()
	}
	stop()
	t.Logf("%d wait sites held after %d periods, %d seen held at some Cut", held, cuts, len(ever))
	// Sites of the last waitIdlePeriods+1 periods of cuts: about a quarter.
	if len(ever) == 0 || float64(held) > 0.6*float64(len(ever)) {
		t.Errorf("%d wait sites held of %d named over %d periods, want those of the last %d periods only", held, len(ever), cuts, waitIdlePeriods+1)
	}
}
