package dump

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
)

// TestTakeNative: the native walk from the registers the kernel saved leads
// from libc's read back to main through code built without frame pointers,
// the kernel frames show the wait, and the thread is waiting.
func TestTakeNative(t *testing.T) {
	testenv.RequireRoot(t)
	gcc := testenv.RequireCommand(t, "gcc")
	bin := filepath.Join(t.TempDir(), "blocked")
	if out, err := exec.Command(gcc, "-O2", "-fomit-frame-pointer", "-o", bin, "../../testdata/native/blocked.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	proc := testenv.Start(t, bin)
	if line, _ := proc.Stdout.ReadString('\n'); line != "ready\n" {
		t.Fatalf("target said %q", line)
	}
	// "ready" comes just before the read: wait until it blocks there.
	pid := proc.Cmd.Process.Pid
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, err := process.State(pid, pid); err == nil && st == 'S' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the target did not block in read within 10 s")
		}
	}
	d, err := Take(pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Threads) != 1 || d.Python != "" {
		t.Fatalf("%d threads, Python %q; want 1 thread, no Python", len(d.Threads), d.Python)
	}
	th := d.Threads[0]
	var names []string
	for _, f := range th.Native {
		names = append(names, f.Name)
	}
	t.Logf("native: %s; why: %s", strings.Join(names, " <- "), th.Why)
	if th.State != Waiting || len(th.Kernel) == 0 {
		t.Errorf("state %s with %d kernel frames, want waiting with its kernel frames", th.State, len(th.Kernel))
	}
	// Leaf first: read (or libc's internal name for it), then the
	// program's functions in order, down to main.
	want := []string{"middle", "outer", "main"}
	j := 0
	for _, n := range names {
		if j < len(want) && n == want[j] {
			j++
		}
	}
	if j != len(want) {
		t.Errorf("native frames %v lack %v in that order", names, want)
	}
	if len(names) == 0 || names[0] == "middle" {
		t.Errorf("no libc frame above middle: %v", names)
	}
}
