package process

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestParseStatArgStart(t *testing.T) {
	fields := strings.Fields("R 1 100 100 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 12345 12400 12400 12500 0")
	st, err := ParseStat([]byte("7 (x) " + strings.Join(fields, " ")))
	if err != nil || st.ArgStart != 12345 {
		t.Errorf("ArgStart %d, %v; want 12345", st.ArgStart, err)
	}
	self, err := ReadStat(os.Getpid())
	if err != nil || self.ArgStart == 0 {
		t.Errorf("own arg_start %d, %v", self.ArgStart, err)
	}
}

// TestDescendants: a child and its child are found, and nothing else.
func TestDescendants(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & echo started; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	b := make([]byte, 8)
	out.Read(b) // "started": the sleep has been forked
	kids, err := Descendants(map[int]bool{cmd.Process.Pid: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 1 {
		t.Fatalf("descendants of sh: %v, want its one sleep", kids)
	}
	st, _ := ReadStat(kids[0])
	if st.PPid != cmd.Process.Pid {
		t.Errorf("descendant %d has parent %d", kids[0], st.PPid)
	}
	defer func() {
		p, _ := os.FindProcess(kids[0])
		p.Kill()
	}()
	if self, _ := Descendants(map[int]bool{os.Getpid(): true}); !slices.Contains(self, cmd.Process.Pid) || !slices.Contains(self, kids[0]) {
		t.Errorf("descendants of the test %v lack sh %d or its sleep %d", self, cmd.Process.Pid, kids[0])
	}
}
