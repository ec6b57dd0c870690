package symbolize

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
)

// prog is a running testdata/prog.c and the addresses it printed.
type prog struct {
	pid                         int
	exe                         string
	leaf, middle, caller, after uint64
	leafRet, dieRet             uint64 // return addresses into bprof_middle and bprof_caller
}

func startProg(t *testing.T) *prog {
	t.Helper()
	gcc := testenv.RequireCommand(t, "gcc")
	exe := filepath.Join(t.TempDir(), "prog")
	out, err := exec.Command(gcc, "-O0", "-fno-omit-frame-pointer", "-o", exe, filepath.Join("testdata", "prog.c")).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	proc := testenv.Start(t, exe)
	cmd := proc.Cmd
	p := &prog{pid: cmd.Process.Pid, exe: exe}
	r := proc.Stdout
	for _, scan := range []struct {
		format string
		args   []any
	}{
		{"fn %v %v %v %v\n", []any{&p.leaf, &p.middle, &p.caller, &p.after}},
		{"leaf %v\n", []any{&p.leafRet}},
		{"die %v\n", []any{&p.dieRet}},
	} {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read prog's output: %v", err)
		}
		if _, err := fmt.Sscanf(line, scan.format, scan.args...); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
	}
	return p
}

func TestNative(t *testing.T) {
	testenv.RequireRoot(t)
	p := startProg(t)
	t.Logf("die returns to %#x; bprof_after starts at %#x", p.dieRet, p.after)
	n := NewNative(process.NewCache())

	for _, tc := range []struct {
		name  string
		addrs []uint64
		want  []string
	}{
		{"leaf and callers", []uint64{p.leaf, p.leafRet, p.dieRet}, []string{"bprof_leaf", "bprof_middle", "bprof_caller"}},
		{"leaf inside", []uint64{p.leaf + 1}, []string{"bprof_leaf"}},
		// A return address at a function's start belongs to the function before.
		{"return address at start", []uint64{p.leaf, p.after}, []string{"bprof_leaf", "bprof_caller"}},
		{"leaf at start", []uint64{p.after}, []string{"bprof_after"}},
		{"unknown", []uint64{0x10, 0x20}, []string{"[unknown]+0x10", "[unknown]+0x20"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames := n.Symbolize(p.pid, tc.addrs, nil)
			if len(frames) != len(tc.addrs) {
				t.Fatalf("got %d frames for %d addresses", len(frames), len(tc.addrs))
			}
			for i, f := range frames {
				if f.Name != tc.want[i] || f.Addr != tc.addrs[i] || f.Kind != KindNative || f.Module == nil {
					t.Errorf("frame %d = %q at %#x (%v, module %v); want %q at %#x", i, f.Name, f.Addr, f.Kind, f.Module, tc.want[i], tc.addrs[i])
				}
			}
		})
	}

	frames := n.Symbolize(p.pid, []uint64{p.leaf, p.middle, 0x10}, []Frame{{Name: "kept"}})
	if len(frames) != 4 || frames[0].Name != "kept" {
		t.Fatalf("Symbolize did not append to dst: %v", frames)
	}
	exeMod := frames[1].Module
	if exeMod != frames[2].Module || exeMod.Path != p.exe || exeMod.BuildID == "" {
		t.Errorf("modules %p %p, path %q, build ID %q; want one shared module of %s with a build ID", exeMod, frames[2].Module, exeMod.Path, exeMod.BuildID, p.exe)
	}
	if frames[3].Module.Path != "[unknown]" {
		t.Errorf("module of an unmapped address = %q, want [unknown]", frames[3].Module.Path)
	}

	// An address of the file with no function: named by file and offset.
	m, bin, ok := n.Mapping(p.pid, p.leaf)
	if !ok || bin == nil || m.Path != p.exe {
		t.Fatalf("Mapping(leaf) = %+v, %v, %v", m, bin, ok)
	}
	if v, ok := bin.Lookup("bprof_leaf"); !ok || v == 0 {
		t.Errorf("Lookup(bprof_leaf) = %#x, %v", v, ok)
	}
	ms, err := process.ReadMaps(p.pid)
	if err != nil {
		t.Fatal(err)
	}
	var head process.Mapping
	for _, m := range ms {
		if m.Path == p.exe && m.Offset == 0 {
			head = m
		}
	}
	f := n.Symbolize(p.pid, []uint64{head.Start + 0x10}, nil)[0]
	if want := "prog+0x10"; f.Name != want || f.Module.Path != p.exe {
		t.Errorf("ELF header address named %q in %q, want %q", f.Name, f.Module.Path, want)
	}
	if f2 := n.Symbolize(p.pid, []uint64{head.Start + 0x10}, nil)[0]; f2.Module != f.Module {
		t.Errorf("second lookup in one mapping gave another *Module")
	}

	n.Forget(p.pid)
	if len(n.procs) != 0 {
		t.Errorf("Forget left %d processes", len(n.procs))
	}
	if got := n.Symbolize(p.pid, []uint64{p.leaf}, nil)[0].Name; got != "bprof_leaf" {
		t.Errorf("after Forget: %q, want bprof_leaf", got)
	}
}

func TestNativeGoneProcess(t *testing.T) {
	n := NewNative(process.NewCache())
	frames := n.Symbolize(1<<30, []uint64{0x401000}, nil)
	if len(frames) != 1 || frames[0].Name != "[unknown]+0x401000" || frames[0].Module.Path != "[unknown]" {
		t.Errorf("frames of a process that does not exist = %+v", frames)
	}
	if _, _, ok := n.Mapping(1<<30, 0x401000); ok {
		t.Errorf("Mapping of a process that does not exist: ok")
	}
}
