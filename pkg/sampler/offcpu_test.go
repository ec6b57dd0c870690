package sampler

import (
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
)

// offcpuEntries counts the kernel's off-CPU entries of pid: per-thread
// states and wait totals.
func offcpuEntries(t *testing.T, s *Sampler, pid int) (threads, waits int) {
	t.Helper()
	var tid uint32
	var st profileOffcpuState
	it := s.objs.OffcpuThreads.Iterate()
	for it.Next(&tid, &st) {
		if st.Pid == uint32(pid) {
			threads++
		}
	}
	var key profileWaitKey
	var val profileWaitTotal
	wit := s.objs.WaitTotals.Iterate()
	for wit.Next(&key, &val) {
		if val.Pid == uint32(pid) {
			waits++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if err := wit.Err(); err != nil {
		t.Fatal(err)
	}
	return threads, waits
}

// TestForgetOffCPU: a removed target's off-CPU state stays in the kernel's
// maps only until the next EndPeriod, which reports none of it; adding the
// PID again drops it at once.
func TestForgetOffCPU(t *testing.T) {
	testenv.RequireRoot(t)
	python := testenv.RequireCommand(t, "python3")
	s, err := New(Config{Rate: 100, OffCPU: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.BeginPeriod(Monotonic()); err != nil {
		t.Fatal(err)
	}
	// A thread that switches out a thousand times a second.
	proc := testenv.Start(t, python, "-c", "import time\nwhile True: time.sleep(0.001)")
	pid := proc.Cmd.Process.Pid
	if err := s.AddTarget(pid); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if th, w := offcpuEntries(t, s, pid); th > 0 && w > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the kernel made no off-CPU entries for the target in 20 s")
		}
	}
	if err := s.RemoveTarget(pid); err != nil {
		t.Fatal(err)
	}
	if th, _ := offcpuEntries(t, s, pid); th == 0 {
		t.Errorf("the removed target's entries went at once; want them kept for the next EndPeriod")
	}
	p, err := s.EndPeriod(Monotonic())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range p.Waits {
		if w.PID == pid {
			t.Errorf("EndPeriod reported a wait of the removed target: %+v", w)
		}
	}
	for _, o := range p.OnCPU {
		if o.PID == pid {
			t.Errorf("EndPeriod reported CPU time of the removed target: %+v", o)
		}
	}
	if th, w := offcpuEntries(t, s, pid); th != 0 || w != 0 {
		t.Errorf("after EndPeriod: %d thread entries and %d wait totals of the removed target, want none", th, w)
	}

	// Removed, then added again before the period ends: the old state goes
	// when the threads are started again, not at the next EndPeriod.
	if err := s.AddTarget(pid); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if th, _ := offcpuEntries(t, s, pid); th > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no off-CPU entries after adding the target again")
		}
	}
	if err := s.RemoveTarget(pid); err != nil {
		t.Fatal(err)
	}
	if err := s.StartThreads(pid, nil, Monotonic()); err != nil {
		t.Fatal(err)
	}
	if th, w := offcpuEntries(t, s, pid); th != 0 || w != 0 {
		t.Errorf("after StartThreads of a removed PID: %d thread entries and %d wait totals left, want none", th, w)
	}
}
