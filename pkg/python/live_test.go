package python

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
)

// busyReport is the JSON line testdata/python/busy.py prints.
type busyReport struct {
	Version        [3]int           `json:"version"`
	Ident          uint64           `json:"ident"`
	NativeID       uint64           `json:"native_id"`
	WorkerIdent    uint64           `json:"worker_ident"`
	WorkerNativeID uint64           `json:"worker_native_id"`
	Lines          map[string][]int `json:"lines"`
}

// startBusy runs busy.py under python and returns its pid and report.
func startBusy(t *testing.T, python string) (int, *busyReport) {
	t.Helper()
	script, err := filepath.Abs("../../testdata/python/busy.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", python, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		if sc.Scan() {
			lines <- sc.Bytes()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("%s %s printed nothing", python, script)
		}
		var r busyReport
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("decode report %q: %v", line, err)
		}
		// The report is printed just before the loops; let c reach its loop.
		time.Sleep(200 * time.Millisecond)
		return cmd.Process.Pid, &r
	case <-time.After(30 * time.Second):
		t.Fatalf("%s %s: no report after 30s", python, script)
	}
	return 0, nil
}

type wantFrame struct {
	name   string // QualName
	marker string // key of busyReport.Lines
}

// TestLiveInterpreters runs busy.py under every interpreter on the machine,
// finds its interpreter, lists its threads, walks both threads' stacks with
// Stack, and checks names and lines against what the script reports.
func TestLiveInterpreters(t *testing.T) {
	found := findInterpreters(t)
	if len(found) == 0 {
		testenv.Skip(t, "no CPython 3.7+ interpreter found")
	}
	for _, py := range found {
		t.Run(py.path, func(t *testing.T) {
			testLive(t, py.path)
		})
	}
}

func testLive(t *testing.T, python string) {
	pid, r := startBusy(t, python)
	mem := openProcMem(t, pid)
	in := findInProcess(t, pid, mem)
	v := Version{r.Version[0], r.Version[1], r.Version[2]}
	if in.Version.Major != v.Major || in.Version.Minor != v.Minor || (in.Version.Patch != 0 && in.Version.Patch != v.Patch) {
		t.Fatalf("Find says Python %s, the script says %s", in.Version, v)
	}
	t.Logf("%s: %s at %s, _PyRuntime %#x", python, in.Version, in.Path, in.RuntimeAddr)

	// Walk a few times: each sample catches the loops at another instruction.
	for range 5 {
		resume := stopped(t, pid)
		threads, err := in.Threads(mem)
		if err != nil {
			resume()
			t.Fatalf("Threads: %v", err)
		}
		main := findThread(t, threads, r.Ident, r.NativeID, in)
		worker := findThread(t, threads, r.WorkerIdent, r.WorkerNativeID, in)
		mainStack := symbolize(t, in, mem, main.TState)
		workerStack := symbolize(t, in, mem, worker.TState)
		resume()

		m := "m"
		if v.AtLeast(3, 11) {
			m = "K.m"
		}
		checkStack(t, "main", mainStack, r, []wantFrame{{"c", "c"}, {m, "m"}, {"a", "a"}, {"<module>", "<module>"}}, true)
		checkStack(t, "worker", workerStack, r, []wantFrame{{"worker", "worker"}}, false)
		time.Sleep(20 * time.Millisecond)
	}
}

func findThread(t *testing.T, threads []Thread, ident, native uint64, in *Interpreter) Thread {
	t.Helper()
	for _, th := range threads {
		if th.ThreadID == ident {
			if in.Offsets.TstateNativeThreadID != Absent && th.NativeID != native {
				t.Errorf("thread %#x: NativeID %d, get_native_id() says %d", ident, th.NativeID, native)
			}
			return th
		}
	}
	t.Fatalf("no thread state with thread_id %#x among %+v", ident, threads)
	return Thread{}
}

type symFrame struct {
	name, file string
	line       int
}

func symbolize(t *testing.T, in *Interpreter, mem *procMem, tstate uint64) []symFrame {
	t.Helper()
	refs, err := in.Stack(mem, tstate, 64)
	if err != nil {
		t.Fatalf("Stack: %v", err)
	}
	var out []symFrame
	for _, ref := range refs {
		c, err := ReadCode(mem, in.Offsets, in.Version, ref.Code)
		if err != nil {
			t.Fatalf("ReadCode: %v", err)
		}
		if c.Check != ref.Check {
			t.Errorf("%s: check value %#x, walker saw %#x", c.QualName, c.Check, ref.Check)
		}
		if c.Check>>32 != uint64(uint32(c.FirstLine)) {
			t.Errorf("%s: check value %#x does not end with co_firstlineno %d", c.QualName, c.Check, c.FirstLine)
		}
		out = append(out, symFrame{name: c.QualName, file: c.File, line: c.Line(int(ref.Instr))})
	}
	return out
}

func checkStack(t *testing.T, which string, got []symFrame, r *busyReport, want []wantFrame, exact bool) {
	t.Helper()
	if len(got) < len(want) || exact && len(got) != len(want) {
		t.Fatalf("%s stack %v, want frames %v", which, got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.name != w.name || filepath.Base(g.file) != "busy.py" || !slices.Contains(r.Lines[w.marker], g.line) {
			t.Errorf("%s frame %d = %s, want %s at busy.py:%v (stack %v)", which, i, g, w.name, r.Lines[w.marker], got)
		}
	}
}

func (f symFrame) String() string {
	return fmt.Sprintf("%s %s:%d", f.name, filepath.Base(f.file), f.line)
}
