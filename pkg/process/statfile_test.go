package process

import (
	"os"
	"os/exec"
	"testing"
)

// TestStatFile: a held stat file reads the process as it is now, and fails
// once the process is gone.
func TestStatFile(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f, err := OpenStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 2 {
		st, err := f.Read()
		if err != nil {
			t.Fatal(err)
		}
		if st.Pid != cmd.Process.Pid || st.Comm != "sleep" || st.Threads != 1 {
			t.Errorf("stat = pid %d comm %q threads %d, want %d sleep 1", st.Pid, st.Comm, st.Threads, cmd.Process.Pid)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if st, err := f.Read(); err == nil {
		t.Errorf("read after the process was reaped: %+v, want an error", st)
	}
	self, err := OpenStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if st, err := self.Read(); err != nil || st.Threads < 2 {
		t.Errorf("own stat: %+v, %v; want the Go runtime's threads", st, err)
	}
}
