package profiler

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/export"
	"github.com/google/pprof/profile"
)

// buildNoFP compiles testdata/native/NAME.c without frame pointers.
func buildNoFP(t *testing.T, name string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		testenv.Skip(t, "no gcc to build the test program")
	}
	src, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "native", name+".c"))
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command(gcc, "-O2", "-fomit-frame-pointer", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", src, err, out)
	}
	return bin
}

// TestNativeStacksWithoutFramePointers: a C program built with
// -fomit-frame-pointer -O2 is walked by its unwind tables to main on at
// least 98 % of its samples (and on to _start), in the right order, with no frame found by
// frame pointers.
func TestNativeStacksWithoutFramePointers(t *testing.T) {
	testenv.RequireRoot(t)
	bin := buildNoFP(t, "nofp")
	proc := testenv.Start(t, bin, "30")
	waitReady(t, proc)
	p := profileAt(t, 250, 4*time.Second, proc)

	var total, full, ordered, byFP int64
	for _, s := range p.Sample {
		n := s.Value[0]
		total += n
		ns := names(s)
		if slices.Contains(ns, "[frame pointers]") {
			byFP += n
		}
		// Whole: main, and the walk went on to the program's entry point.
		i := slices.Index(ns, "main")
		if i < 0 || ns[len(ns)-1] != "_start" {
			continue
		}
		full += n
		// Where inner is on the stack, its callers follow it in order.
		in := slices.Index(ns, "inner")
		if in < 0 || (in < slices.Index(ns, "middle") && slices.Index(ns, "middle") < slices.Index(ns, "outer") &&
			slices.Index(ns, "outer") < i) {
			ordered += n
		}
	}
	t.Logf("%d samples: %d reach main, %d in order, %d by frame pointers", total, full, ordered, byFP)
	if total < 500 {
		t.Fatalf("only %d samples", total)
	}
	if float64(full) < 0.98*float64(total) {
		t.Errorf("%d of %d samples reach main; want at least 98%%", full, total)
	}
	if ordered != full {
		t.Errorf("%d of %d samples that reach main have inner, middle, outer out of order", full-ordered, full)
	}
	if float64(byFP) > 0.02*float64(total) {
		t.Errorf("%d of %d samples fell back to frame pointers", byFP, total)
	}
}

// TestNativeFramesUnderPython: in a Python program that calls into C
// libraries, the library's native frames sit right below (callee-side of)
// the Python function that calls it, libpython's frames between them are
// named, and the Python frames sit below the eval loop that runs them.
func TestNativeFramesUnderPython(t *testing.T) {
	want := map[string]func(loc *profile.Location) bool{
		"digest_blob": func(l *profile.Location) bool {
			return l.Mapping != nil && strings.Contains(filepath.Base(l.Mapping.File), "libcrypto")
		},
		"compress_blob": func(l *profile.Location) bool {
			return l.Mapping != nil && strings.Contains(filepath.Base(l.Mapping.File), "libz.")
		},
		"dump_json": func(l *profile.Location) bool {
			// _json is a shared module, or built in: then its functions' names say it.
			return l.Mapping != nil && strings.HasPrefix(filepath.Base(l.Mapping.File), "_json") ||
				strings.HasPrefix(l.Line[0].Function.Name, "encoder_")
		},
	}
	for _, py := range interpreters(t) {
		t.Run(py.name, func(t *testing.T) {
			proc := startScript(t, py, "native_calls.py", "30")
			p := profileAt(t, 250, 5*time.Second, proc)
			in := map[string]int64{}
			hit := map[string]int64{}
			var total, junk, nested int64
			for _, s := range p.Sample {
				n := s.Value[0]
				total += n
				// Junk from mis-unwinding: an unnamed frame in the interpreter,
				// whose functions all have symbols. (Stripped libraries such as
				// libc and libcrypto have unnamed local functions for real.)
				for _, loc := range s.Location {
					name := loc.Line[0].Function.Name
					if loc.Mapping != nil && isInterpreter(loc.Mapping.File) && strings.Contains(name, "+0x") {
						junk += n
						t.Logf("unnamed interpreter frame: %v", names(s))
						break
					}
				}
				// The call the sample is in (json.dumps runs Python frames of
				// its own before the C encoder), and the native frames
				// leaf-ward of the leaf-most Python frame.
				leafPy, fn := -1, ""
				for i, loc := range s.Location {
					if loc.Mapping == nil || loc.Mapping.File != export.PythonMapping {
						continue
					}
					if leafPy < 0 {
						leafPy = i
					}
					if _, ok := want[loc.Line[0].Function.Name]; ok {
						fn = loc.Line[0].Function.Name
						break
					}
				}
				is, ok := want[fn]
				if !ok {
					continue
				}
				in[fn] += n
				if slices.ContainsFunc(s.Location[:leafPy], is) {
					hit[fn] += n
				}
				// <module> runs in an eval loop: an eval frame is right root-ward
				// of it (unnamed in a stripped interpreter whose LTO cloned it).
				ns := names(s)
				if m := slices.Index(ns, "<module>"); m >= 0 && m+1 < len(ns) && isEvalFrame(s.Location[m+1]) {
					nested += n
				} else if nested == 0 {
					t.Logf("not nested: %v", ns)
				}
			}
			var inAll int64
			for fn := range want {
				if fn == "dump_json" && !builtinJSONChecked(t, p) {
					continue
				}
				inAll += in[fn]
				share := float64(hit[fn]) / float64(max(in[fn], 1))
				t.Logf("%s: %d samples, %.1f%% with the library's frame below it", fn, in[fn], 100*share)
				if in[fn] < 50 {
					t.Errorf("%s: only %d samples", fn, in[fn])
				} else if share < 0.8 {
					t.Errorf("%s: %.1f%% of its samples have the library's frame below it; want at least 80%%", fn, 100*share)
				}
			}
			t.Logf("%d samples, %d with a +0x frame, %d of %d in the calls nested under an eval frame", total, junk, nested, inAll)
			if float64(junk) > 0.02*float64(total) {
				t.Errorf("%d of %d samples have an unnamed (+0x) native frame; want at most 2%%", junk, total)
			}
			if float64(nested) < 0.9*float64(inAll) {
				t.Errorf("%d of %d samples have <module> right below _PyEval_EvalFrameDefault", nested, inAll)
			}
		})
	}
}

// isEvalFrame reports whether loc is the interpreter's bytecode loop: by
// name, or an unnamed frame of a stripped interpreter.
func isEvalFrame(loc *profile.Location) bool {
	name := loc.Line[0].Function.Name
	if strings.HasPrefix(name, "_PyEval_EvalFrameDefault") {
		return true
	}
	base := filepath.Base(loc.Mapping.File)
	return strings.Contains(name, "+0x") && (strings.HasPrefix(base, "python3") || strings.HasPrefix(base, "libpython"))
}

// builtinJSONChecked reports whether dump_json's native frames can be told
// apart in p: true when _json is a shared module, or built in with symbols.
// Debian's trixie and sid build _json into a stripped interpreter, where
// its functions have no names; the test logs that and leaves them out.
func builtinJSONChecked(t *testing.T, p *profile.Profile) bool {
	for _, m := range p.Mapping {
		if strings.HasPrefix(filepath.Base(m.File), "_json") {
			return true
		}
	}
	for _, f := range p.Function {
		if strings.HasPrefix(f.Name, "encoder_") {
			return true
		}
	}
	t.Logf("dump_json: _json is built into a stripped interpreter here: its frames have no names to check")
	return false
}

// isInterpreter reports whether a mapped file is CPython's own: libpython or
// a python3.X executable. Debian strips its interpreter to .dynsym, which
// leaves its static functions unnamed, so this is asked of pyenv builds only.
func isInterpreter(file string) bool {
	base := filepath.Base(file)
	return strings.Contains(file, "/.pyenv/") && (strings.HasPrefix(base, "libpython") || strings.HasPrefix(base, "python3"))
}

// TestVDSOFrames: time.monotonic() runs in the kernel's vDSO, which no file
// backs; its table comes from bprof's own copy, so those samples are walked
// on to _start, not by frame pointers.
func TestVDSOFrames(t *testing.T) {
	testenv.RequireRoot(t)
	py := hostInterpreter(t)
	proc := testenv.Start(t, py.path, "-c", "import sys, time\nprint('ready', flush=True)\nsys.stdin.readline()\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n")
	waitReady(t, proc)
	p := profileAt(t, 250, 4*time.Second, proc)
	var inVDSO, whole, named int64
	for _, s := range p.Sample {
		if s.Location[0].Mapping == nil || s.Location[0].Mapping.File != "[vdso]" {
			continue
		}
		inVDSO += s.Value[0]
		// The vDSO's image carries only its dynamic symbols: a static
		// helper (on 6.18, do_hres at [vdso]+0x7bd) is unnamed, and its
		// caller, the exported clock_gettime, names the sample.
		if vdsoNamed(s, "clock_gettime") {
			named += s.Value[0]
		}
		ns := names(s)
		if ns[len(ns)-1] == "_start" && !slices.Contains(ns, "[frame pointers]") {
			whole += s.Value[0]
		}
	}
	t.Logf("%d samples in the vDSO, %d of them walked to _start by tables, %d in or under clock_gettime", inVDSO, whole, named)
	if float64(named) < 0.5*float64(inVDSO) {
		t.Errorf("%d of %d vDSO samples are in or under a frame named after clock_gettime; want most", named, inVDSO)
	}
	if inVDSO < 20 {
		t.Fatalf("only %d samples in the vDSO", inVDSO)
	}
	if float64(whole) < 0.95*float64(inVDSO) {
		t.Errorf("%d of %d vDSO samples walked to _start by tables; want 95%%", whole, inVDSO)
	}
}

// vdsoNamed reports whether one of the sample's leaf-most vDSO frames is
// named like name.
func vdsoNamed(s *profile.Sample, name string) bool {
	for _, l := range s.Location {
		if l.Mapping == nil || l.Mapping.File != "[vdso]" {
			return false
		}
		if strings.Contains(l.Line[0].Function.Name, name) {
			return true
		}
	}
	return false
}

// TestLibraryLoadedAfterAttach: a library mapped after bprof attached is
// found (the walker asks for the mappings again) and its frames unwound by
// its table, not by frame pointers.
func TestLibraryLoadedAfterAttach(t *testing.T) {
	testenv.RequireRoot(t)
	py := hostInterpreter(t)
	proc := startScript(t, py, "late_import.py", "30")
	p := profileAt(t, 250, 4*time.Second, proc)
	var in, libz, byFP int64
	for _, s := range p.Sample {
		if !hasFrame(s, "compress_late") {
			continue
		}
		in += s.Value[0]
		if slices.ContainsFunc(s.Location, func(l *profile.Location) bool {
			return l.Mapping != nil && strings.HasPrefix(filepath.Base(l.Mapping.File), "libz.")
		}) {
			libz += s.Value[0]
		}
		if hasFrame(s, "[frame pointers]") {
			byFP += s.Value[0]
		}
	}
	t.Logf("%d samples in compress_late: %d with a libz frame, %d by frame pointers", in, libz, byFP)
	if in < 300 {
		t.Fatalf("only %d samples in compress_late", in)
	}
	if float64(libz) < 0.8*float64(in) {
		t.Errorf("%d of %d samples in compress_late have a libz frame; want 80%%", libz, in)
	}
	if float64(byFP) > 0.05*float64(in) {
		t.Errorf("%d of %d samples in compress_late were walked by frame pointers; want at most 5%%", byFP, in)
	}
}

// TestSignalFrames: a stack sampled in a signal handler is walked through
// the kernel's signal frame (glibc's __restore_rt, whose unwind rule reads
// the saved registers from the ucontext) back into the interrupted code.
func TestSignalFrames(t *testing.T) {
	testenv.RequireRoot(t)
	bin := buildNoFP(t, "signal")
	proc := testenv.Start(t, bin, "30")
	waitReady(t, proc)
	p := profileAt(t, 250, 4*time.Second, proc)
	var inHandler, through int64
	for _, s := range p.Sample {
		ns := names(s)
		h := slices.Index(ns, "handler_work")
		if h < 0 {
			continue
		}
		inHandler += s.Value[0]
		// handler_work → on_alarm → (signal frame) → main_work → main → … → _start
		if o := slices.Index(ns, "on_alarm"); o > h {
			if m := slices.Index(ns, "main_work"); m > o && slices.Index(ns, "main") > m && ns[len(ns)-1] == "_start" {
				through += s.Value[0]
				continue
			}
		}
		if inHandler-through <= 3 {
			t.Logf("not through the signal frame: %v", ns)
		}
	}
	t.Logf("%d samples in the handler, %d walked through the signal frame to _start", inHandler, through)
	if inHandler < 100 {
		t.Fatalf("only %d samples in the signal handler", inHandler)
	}
	if float64(through) < 0.9*float64(inHandler) {
		t.Errorf("%d of %d handler samples walked through the signal frame to _start; want 90%%", through, inHandler)
	}
}

// TestExecIntoPython: a target added while it is still a shell script that
// then execs python (pyenv's shims do this) gets its Python frames: the
// walker meets code outside the old mappings, and the mappings and the
// interpreter are looked up again.
func TestExecIntoPython(t *testing.T) {
	testenv.RequireRoot(t)
	py := hostInterpreter(t)
	script := "import time\ndef after_exec():\n    end = time.time() + 30\n    while time.time() < end: pass\nafter_exec()\n"
	proc := testenv.Start(t, "bash", "-c", "echo ready; read go; exec "+py.path+" -c '"+script+"'")
	waitReady(t, proc)
	p := profileAt(t, 100, 3*time.Second, proc)
	var total, named int64
	for _, s := range p.Sample {
		total += s.Value[0]
		if hasFrame(s, "after_exec") {
			named += s.Value[0]
		}
	}
	// bash execs Python once sampling has begun; from then on nearly every
	// sample is Python's, all of them in after_exec once re-attached (a
	// few of bash's and of Python's start-up remain).
	t.Logf("%d samples, %d in after_exec", total, named)
	if total < 20 || float64(named) < 0.8*float64(total) {
		t.Errorf("%d of %d samples in after_exec: the process was not re-attached as Python after its exec", named, total)
	}
}

// hostInterpreter is the first CPython that runs outside a chroot, for tests
// that start it with arguments of their own.
func hostInterpreter(t *testing.T) interpreter {
	t.Helper()
	for _, py := range interpreters(t) {
		if py.chroot == "" {
			return py
		}
	}
	testenv.Skip(t, "no CPython outside a chroot")
	return interpreter{}
}
