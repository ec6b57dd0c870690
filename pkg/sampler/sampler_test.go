package sampler

import (
	"os/exec"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
)

func TestSampleBusyProcess(t *testing.T) {
	testenv.RequireRoot(t)
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	s, err := New(Config{Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddTarget(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		smp, err := s.Read()
		if err != nil {
			t.Fatal(err)
		}
		if smp.PID != cmd.Process.Pid || smp.Kind != KindCPU {
			t.Fatalf("sample of pid %d kind %d, want pid %d cpu", smp.PID, smp.Kind, cmd.Process.Pid)
		}
		if len(smp.User) == 0 && len(smp.Kernel) == 0 {
			t.Fatalf("sample with no stack: %+v", smp)
		}
		n++
	}
	st, _ := s.Stats()
	t.Logf("%d samples in 2s, stats %+v", n, st)
	if n < 100 {
		t.Fatalf("%d samples in 2 s of a busy thread at 100 Hz, want about 200", n)
	}
}
