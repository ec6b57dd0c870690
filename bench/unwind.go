package main

import (
	"debug/elf"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/profiler"
	"github.com/bprof/bprof/pkg/unwind"
)

// unwindResult is what native unwinding costs: in the kernel per sample,
// and in user space to build the tables.
type unwindResult struct {
	// In-kernel cost per sample of a stack with ~30 native and 64 Python
	// frames, walked by unwind tables and, for comparison, by frame pointers.
	tables, fp         depthResult
	nativeTables       float64 // native frames per sample, median, by tables
	nativeFP           float64 // the same by frame pointers
	libpython          string
	libRows, libFDEs   int
	libParse           time.Duration // parse + compact, median of 5
	libAlloc           uint64        // bytes allocated by one parse + compact
	libs               int           // shared objects the many-libraries process maps
	duration           time.Duration // of each cost measurement
	addTables, addFP   time.Duration // Session.Add of that process, with and without tables
	files, rows        int           // tables loaded for it
	heapTables, heapFP uint64        // Go heap in use after Add
}

// unwindCost measures native unwinding.
func unwindCost(python string, d time.Duration) (unwindResult, error) {
	r := unwindResult{duration: d}
	var err error
	for _, fp := range []bool{false, true} {
		res, err := nativeDepthCost(python, fp, d)
		if err != nil {
			return r, err
		}
		if fp {
			r.fp, r.nativeFP = res, res.natives
		} else {
			r.tables, r.nativeTables = res, res.natives
		}
	}
	if r.libpython, err = interpreterFile(python); err != nil {
		return r, err
	}
	if err := parseCost(&r); err != nil {
		return r, err
	}
	r.libs = 200
	return r, manyLibsAdd(&r, python)
}

// nativeDepthCost is perSampleCost for testdata/python/native_depth.py: 64
// Python frames over json's C encoder, ~30 native frames deep.
func nativeDepthCost(python string, fp bool, d time.Duration) (depthResult, error) {
	stats, err := enableStats()
	if err != nil {
		return depthResult{depth: 64}, err
	}
	defer stats.Close()
	// Pinned: the two vCPUs differ ~1.5× in speed, and so does the cost.
	w, err := launch(pinned(targetCPU, []string{python, filepath.Join("testdata", "python", "native_depth.py"), "64", fmt.Sprint(d.Seconds() + 5)}))
	if err != nil {
		return depthResult{depth: 64}, err
	}
	defer w.stop()
	res, _, err := measureSample(w.pid(), profiler.Options{FramePointers: fp}, d)
	res.depth = 64
	return res, err
}

// interpreterFile is the file holding python's bytecode loop: libpython
// when python links it, else python itself.
func interpreterFile(python string) (string, error) {
	exe, err := filepath.EvalSymlinks(python)
	if err != nil {
		return "", err
	}
	libs, _ := filepath.Glob(filepath.Join(filepath.Dir(exe), "..", "lib", "libpython3*.so.1.0"))
	if len(libs) > 0 {
		return filepath.Clean(libs[0]), nil
	}
	return exe, nil
}

// parseCost times building libpython's table as the profiler does it.
func parseCost(r *unwindResult) error {
	var times []float64
	for i := range 5 {
		f, err := elf.Open(r.libpython)
		if err != nil {
			return err
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		t, err := unwind.Parse(f)
		if err != nil {
			f.Close()
			return err
		}
		rows, _, err := t.Compact(0)
		el := time.Since(start)
		runtime.ReadMemStats(&after)
		f.Close()
		if err != nil {
			return err
		}
		times = append(times, float64(el))
		if i == 0 {
			r.libRows, r.libFDEs = len(rows), t.FDEs
			r.libAlloc = after.TotalAlloc - before.TotalAlloc
		}
	}
	r.libParse = time.Duration(median(times))
	return nil
}

// manyLibsAdd times Session.Add of a process mapping r.libs shared objects,
// with unwind tables and without, each in a new Session (nothing cached).
func manyLibsAdd(r *unwindResult, python string) error {
	cmd, err := startManyLibs(python, r.libs, time.Minute)
	if err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for _, fp := range []bool{false, true} {
		s, err := profiler.NewSession(profiler.Options{FramePointers: fp})
		if err != nil {
			return err
		}
		runtime.GC()
		start := time.Now()
		err = s.Add(cmd.Process.Pid)
		el := time.Since(start)
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		st := s.UnwindStats()
		s.Close()
		if err != nil {
			return err
		}
		if fp {
			r.addFP, r.heapFP = el, ms.HeapInuse
		} else {
			r.addTables, r.heapTables = el, ms.HeapInuse
			r.files, r.rows = st.Files, st.Rows
		}
	}
	return nil
}

func (r *unwindResult) write(b *strings.Builder) {
	b.WriteString("\n## Native unwinding (.eh_frame tables in the kernel)\n\n")
	fmt.Fprintf(b, "`testdata/python/native_depth.py 64`: 64 Python frames whose leaf runs json's C encoder through nested\n"+
		"lists, pinned to CPU %d, sampled at 100 Hz for %s; the same workload with `--frame-pointers` beside it.\n"+
		"Native frames per sample are the median of the profile's file-backed frames.\n\n", targetCPU, r.duration)
	b.WriteString("| walk | native frames | samples | ns per run | empty program, ns per run | µs per sample, all in | floor, µs per sample | above the floor, µs | goal | met |\n|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(b, "| unwind tables | %.0f | %d | %.0f | %.0f | %.2f | %.2f | %.2f | ≤ 10 µs all in; ≤ 5 µs above the floor | %s; %s |\n", r.nativeTables, r.tables.samples,
		r.tables.nsPerRun, r.tables.floorPerRun, r.tables.nsPerSample/1000, r.tables.floorPerSample()/1000, r.tables.aboveFloor()/1000,
		yes(r.tables.nsPerSample <= 10000), yes(r.tables.aboveFloor() <= 5000))
	fmt.Fprintf(b, "| frame pointers | %.0f | %d | %.0f | %.0f | %.2f | %.2f | %.2f | | |\n", r.nativeFP, r.fp.samples, r.fp.nsPerRun,
		r.fp.floorPerRun, r.fp.nsPerSample/1000, r.fp.floorPerSample()/1000, r.fp.aboveFloor()/1000)
	b.WriteString("\n*Floor* is what as many runs of an empty perf_event program cost, measured beside bprof on the same ticks\n" +
		"(`bench/floor.go`); *above the floor* is what bprof's program adds.\n")
	fmt.Fprintf(b, "\nTable of `%s`: %d FDEs → %d rows (%d KiB in the kernel), built in %s (median of 5), "+
		"allocating %.1f MB.\n", r.libpython, r.libFDEs, r.libRows, r.libRows*8/1024, r.libParse.Round(10*time.Microsecond),
		float64(r.libAlloc)/1e6)
	fmt.Fprintf(b, "\nA Python process mapping %d generated shared objects (`bench/manylibs.go`): `Session.Add` took %s with\n"+
		"unwind tables (%d files, %d rows, %d KiB in the kernel) and %s without; Go heap in use after it: %.1f MB and %.1f MB.\n",
		r.libs, r.addTables.Round(time.Millisecond), r.files, r.rows, r.rows*8/1024, r.addFP.Round(time.Millisecond),
		float64(r.heapTables)/1e6, float64(r.heapFP)/1e6)
}
