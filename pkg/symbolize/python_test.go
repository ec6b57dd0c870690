package symbolize

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
)

// TestPythonAttachSharesFiles: processes running one interpreter file read
// it once, and each still gets its own runtime addresses.
func TestPythonAttachSharesFiles(t *testing.T) {
	testenv.RequireRoot(t)
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		root = filepath.Join(os.Getenv("HOME"), ".pyenv")
	}
	for _, v := range []string{"3.8.18", "3.11.7", "3.13.0"} {
		t.Run(v, func(t *testing.T) {
			py := filepath.Join(root, "versions", v, "bin", "python3")
			if _, err := os.Stat(py); err != nil {
				testenv.Skip(t, "no "+py)
			}
			p := NewPython(NewNative(process.NewCache()))
			for range 3 {
				proc := testenv.Start(t, py, "-c", "import sys; print('ready', flush=True); sys.stdin.readline()")
				if _, err := proc.Stdout.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
				in, _, err := p.Attach(proc.Cmd.Process.Pid)
				if err != nil || in == nil {
					t.Fatalf("attach %s: %v", v, err)
				}
				// Its own addresses: the file's symbols plus this process's bias.
				if th, err := p.Threads(proc.Cmd.Process.Pid); err != nil || len(th) != 1 {
					t.Errorf("threads of process %d: %v, %v; want its one thread", proc.Cmd.Process.Pid, th, err)
				}
			}
			if len(p.files) != 1 {
				t.Errorf("%d interpreter files read for three processes of one python, want 1", len(p.files))
			}
		})
	}
}
