package process

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// target is a running testdata/target.c and the addresses it printed.
type target struct {
	pid                      int
	exe, lib                 string
	marker, fn, other, libFn uint64
}

// startTarget builds testdata/target.c with gcc (linkFlag "-pie" or
// "-no-pie") and starts it. It stops when the test ends.
func startTarget(t *testing.T, linkFlag string) *target {
	t.Helper()
	gcc := testenv.RequireCommand(t, "gcc")
	dir := t.TempDir()
	src, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(gcc, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	lib := filepath.Join(dir, "libtarget.so")
	exe := filepath.Join(dir, "target")
	run("-O0", "-shared", "-fPIC", "-o", lib, filepath.Join(src, "libtarget.c"))
	pic := "-fPIE"
	if linkFlag == "-no-pie" {
		pic = "-fno-pie"
	}
	run("-O0", pic, linkFlag, "-o", exe, filepath.Join(src, "target.c"), "-L"+dir, "-ltarget", "-Wl,-rpath,"+dir)

	proc := testenv.Start(t, exe)
	cmd := proc.Cmd
	line, err := proc.Stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("read target's addresses: %v", err)
	}
	tg := &target{pid: cmd.Process.Pid, exe: exe, lib: lib}
	if _, err := fmt.Sscanf(line, "%v %v %v %v", &tg.marker, &tg.fn, &tg.other, &tg.libFn); err != nil {
		t.Fatalf("parse target's addresses %q: %v", line, err)
	}
	return tg
}

// mappingOf returns the mapping of pid that holds addr.
func mappingOf(t *testing.T, pid int, addr uint64) Mapping {
	t.Helper()
	ms, err := ReadMaps(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Contains(addr) {
			return m
		}
	}
	t.Fatalf("no mapping of pid %d holds %#x", pid, addr)
	return Mapping{}
}

func TestTarget(t *testing.T) {
	testenv.RequireRoot(t) // map_files and process_vm_readv of another process
	for _, link := range []string{"-pie", "-no-pie"} {
		t.Run(link, func(t *testing.T) {
			tg := startTarget(t, link)
			cache := NewCache()
			for _, c := range []struct {
				name, file string
				addr       uint64
			}{
				{"bprof_target_func", tg.exe, tg.fn},
				{"bprof_other_func", tg.exe, tg.other},
				{"bprof_lib_func", tg.lib, tg.libFn},
			} {
				m := mappingOf(t, tg.pid, c.addr)
				if m.Path != c.file || !m.Executable() {
					t.Fatalf("%s at %#x: mapping %+v, want executable %s", c.name, c.addr, m, c.file)
				}
				f, err := OpenMapped(tg.pid, m)
				if err != nil {
					t.Fatal(err)
				}
				b, err := ParseBinary(f, m.Path)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				if b.BuildID == "" || b.ID.BuildID != b.BuildID {
					t.Errorf("%s: build ID %q, ID %v", c.file, b.BuildID, b.ID)
				}
				bias, err := b.Bias(m)
				if err != nil {
					t.Fatal(err)
				}
				if link == "-no-pie" && c.file == tg.exe && bias != 0 {
					t.Errorf("%s: bias %#x of a non-PIE executable, want 0", c.name, bias)
				}
				name, start, ok := b.Symbol(c.addr - bias)
				if !ok || name != c.name || start != c.addr-bias {
					t.Errorf("Symbol(%#x) = %q, %#x, %v; want %q at %#x", c.addr-bias, name, start, ok, c.name, c.addr-bias)
				}
				if name, _, ok := b.Symbol(c.addr - bias + 1); !ok || name != c.name {
					t.Errorf("Symbol(%#x+1) = %q, %v; want %q", c.addr-bias, name, ok, c.name)
				}
				if v, ok := b.Lookup(c.name); !ok || v+bias != c.addr {
					t.Errorf("Lookup(%q) = %#x, %v; want %#x", c.name, v, ok, c.addr-bias)
				}
				cb, err := cache.Binary(tg.pid, m)
				if err != nil {
					t.Fatal(err)
				}
				if cb.BuildID != b.BuildID {
					t.Errorf("cached build ID %q, want %q", cb.BuildID, b.BuildID)
				}
				if again, _ := cache.Binary(tg.pid, m); again != cb {
					t.Errorf("second Cache.Binary returned another *Binary")
				}
			}

			// The marker is a data object: Lookup finds it, Symbol does not.
			m := mappingOf(t, tg.pid, tg.fn)
			b, err := cache.Binary(tg.pid, m)
			if err != nil {
				t.Fatal(err)
			}
			bias, _ := b.Bias(m)
			if v, ok := b.Lookup("bprof_marker"); !ok || v+bias != tg.marker {
				t.Errorf("Lookup(bprof_marker) = %#x, %v; want %#x", v, ok, tg.marker-bias)
			}
			if name, _, ok := b.Symbol(tg.marker - bias); ok {
				t.Errorf("Symbol(marker) = %q, want no function", name)
			}
			if _, ok := b.Section(".text"); !ok {
				t.Errorf("no .text section")
			}
			f, err := OpenMapped(tg.pid, m)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if data, err := b.ReadSection(f, ".interp"); err != nil || !strings.HasPrefix(string(data), "/lib") {
				t.Errorf("ReadSection(.interp) = %q, %v", data, err)
			}

			mem := NewMemory(tg.pid)
			defer mem.Close()
			v, err := mem.Uint64(tg.marker)
			if err != nil || v != 0x1122334455667788 {
				t.Errorf("Uint64(marker) = %#x, %v", v, err)
			}
			if v, err := mem.Uint32(tg.marker); err != nil || v != 0x55667788 {
				t.Errorf("Uint32(marker) = %#x, %v", v, err)
			}
		})
	}
}
