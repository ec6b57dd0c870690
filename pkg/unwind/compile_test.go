package unwind

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// TestCompiledProgram builds testdata/prog.c without frame pointers and
// checks the rules of functions whose code is known.
func TestCompiledProgram(t *testing.T) {
	gcc := testenv.RequireCommand(t, "gcc")
	build := func(t *testing.T, flags ...string) (string, *elf.File) {
		exe := filepath.Join(t.TempDir(), "prog")
		args := append(flags, "-o", exe, filepath.Join("testdata", "prog.c"))
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, out)
		}
		f, err := elf.Open(exe)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return exe, f
	}

	t.Run("eh_frame", func(t *testing.T) {
		exe, f := build(t, "-O2", "-fomit-frame-pointer")
		tab, err := Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		if tab.Section != ".eh_frame" {
			t.Errorf("Section = %q", tab.Section)
		}
		checkFunc(t, tab, symbol(t, f, "main"), KindRSP)
		checkBigFrame(t, tab, symbol(t, f, "work"))
		// crt1's CIE leaves rip undefined: nothing calls _start.
		checkFunc(t, tab, symbol(t, f, "_start"), KindEnd)
		if plt := f.Section(".plt"); plt != nil && plt.Size > 16 {
			// The first entry after PLT0 is under the PLT expression.
			row, _ := tab.Find(plt.Addr + 16)
			if row.Kind != KindPLT || row.CFAOffset != 10 && row.CFAOffset != 11 {
				t.Errorf(".plt+16: %+v, want KindPLT with threshold 10 or 11", row)
			}
		}
		crossCheckIfReadelf(t, exe, tab)
	})

	t.Run("debug_frame", func(t *testing.T) {
		exe, f := build(t, "-O2", "-g", "-fomit-frame-pointer", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables")
		s := f.Section(".debug_frame")
		if s == nil {
			t.Fatal("gcc made no .debug_frame")
		}
		data, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		tab, err := ParseDebugFrame(data)
		if err != nil {
			t.Fatal(err)
		}
		checkFunc(t, tab, symbol(t, f, "main"), KindRSP)
		checkBigFrame(t, tab, symbol(t, f, "work"))
		crossCheckIfReadelf(t, exe, tab)
	})
}

func symbol(t *testing.T, f *elf.File, name string) elf.Symbol {
	t.Helper()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return s
		}
	}
	t.Fatalf("no function %s", name)
	return elf.Symbol{}
}

// checkFunc checks that every byte of fn is covered by a row of kind k.
func checkFunc(t *testing.T, tab *Table, fn elf.Symbol, k Kind) {
	t.Helper()
	for pc := fn.Value; pc < fn.Value+fn.Size; pc++ {
		if row, ok := tab.Find(pc); !ok || row.Kind != k {
			t.Errorf("%s+%#x: %+v, want %v", fn.Name, pc-fn.Value, row, k)
			return
		}
	}
}

// checkBigFrame checks that fn is all KindRSP and once has its 4 KiB
// buffer on the stack, saving rbp on the way.
func checkBigFrame(t *testing.T, tab *Table, fn elf.Symbol) {
	t.Helper()
	checkFunc(t, tab, fn, KindRSP)
	var big bool
	for pc := fn.Value; pc < fn.Value+fn.Size; pc++ {
		row, _ := tab.Find(pc)
		big = big || row.CFAOffset > 4096 && row.RBPOffset < 0
	}
	if !big {
		t.Errorf("%s: no row with CFA above rsp+4096 and rbp saved", fn.Name)
	}
}

func crossCheckIfReadelf(t *testing.T, exe string, tab *Table) {
	t.Helper()
	readelf, err := exec.LookPath("readelf")
	if err != nil {
		t.Log("no readelf: not cross-checked")
		return
	}
	rows, exact := crossCheck(t, readelf, exe, tab)
	t.Logf("%s: %d readelf rows agree, %d exact", tab.Section, rows, exact)
}
