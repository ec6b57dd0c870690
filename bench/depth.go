package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/profiler"
	"github.com/google/pprof/profile"
)

type depthResult struct {
	depth       int
	natives     float64 // native frames per sample, median (file-backed frames)
	samples     int64
	runs        uint64
	nsPerRun    float64 // kernel run time / every run (ticks on other threads exit early)
	nsPerSample float64 // kernel run time / samples of the target: the conservative figure
	floorPerRun float64 // the empty program's run time / its runs, over the same ticks (floorProbe)
}

// floorPerSample is what bprof's runs would have cost as runs of the empty
// program: the floor under nsPerSample.
func (d depthResult) floorPerSample() float64 {
	if d.samples == 0 {
		return 0
	}
	return d.floorPerRun * float64(d.runs) / float64(d.samples)
}

// aboveFloor is nsPerSample less the floor: what bprof's code adds.
func (d depthResult) aboveFloor() float64 { return d.nsPerSample - d.floorPerSample() }

// measureSample profiles pid for d with opts, an empty program beside it
// on the same ticks (floorProbe), and returns the cost of bprof's on-CPU
// program per run and per sample of the target, the floor's, and the
// profile. bpf_stats must be on (enableStats).
func measureSample(pid int, opts profiler.Options, d time.Duration) (depthResult, *profile.Profile, error) {
	var res depthResult
	floor, err := startFloor(100)
	if err != nil {
		return res, nil, err
	}
	defer floor.Close()
	s, err := profileFor(pid, opts, d)
	if err != nil {
		return res, nil, err
	}
	defer s.Close()
	ps, err := s.ProgramStats()
	if err != nil {
		return res, nil, err
	}
	fs, err := floor.stats()
	if err != nil {
		return res, nil, fmt.Errorf("read the empty program's stats: %w", err)
	}
	counters, err := s.Stats()
	if err != nil {
		return res, nil, err
	}
	p, _, _ := s.Cut()
	for _, smp := range p.Sample {
		res.samples += smp.Value[0]
	}
	res.natives = nativeFrames(p)
	st := ps["bprof_cpu"]
	res.runs = st.RunCount
	if st.RunCount > 0 {
		res.nsPerRun = float64(st.Runtime.Nanoseconds()) / float64(st.RunCount)
	}
	if counters.Samples > 0 {
		res.nsPerSample = float64(st.Runtime.Nanoseconds()) / float64(counters.Samples)
	}
	if fs.RunCount > 0 {
		res.floorPerRun = float64(fs.Runtime.Nanoseconds()) / float64(fs.RunCount)
	}
	return res, p, nil
}

// nativeFrames is the median count of file-backed frames per sample.
func nativeFrames(p *profile.Profile) float64 {
	var natives []float64
	for _, smp := range p.Sample {
		n := 0
		for _, loc := range smp.Location {
			if loc.Mapping != nil && !strings.HasPrefix(loc.Mapping.File, "[") {
				n++
			}
		}
		for range smp.Value[0] {
			natives = append(natives, float64(n))
		}
	}
	return median(natives)
}

// perSampleCost profiles a thread whose Python stack is depth frames deep and
// reads the kernel's run time of the on-CPU program.
func perSampleCost(python string, depth int, d time.Duration) (depthResult, error) {
	stats, err := enableStats()
	if err != nil {
		return depthResult{depth: depth}, err
	}
	defer stats.Close()
	// Pinned: the two vCPUs differ ~1.5× in speed, and so does the cost.
	w, err := launch(pinned(targetCPU, []string{python, filepath.Join("testdata", "python", "depth.py"), fmt.Sprint(depth), fmt.Sprint(d.Seconds() + 5), "1"}))
	if err != nil {
		return depthResult{depth: depth}, err
	}
	defer w.stop()
	res, p, err := measureSample(w.pid(), profiler.Options{}, d)
	res.depth = depth
	if err != nil {
		return res, err
	}
	deepest := 0
	for _, smp := range p.Sample {
		n := 0
		for _, loc := range smp.Location {
			if loc.Mapping != nil && loc.Mapping.File == "[python]" {
				n++
			}
		}
		deepest = max(deepest, n)
	}
	if deepest < min(depth, 128)-1 && os.Getenv("BENCH_NO_CHECK") == "" {
		return res, fmt.Errorf("deepest Python stack seen has %d frames, want %d", deepest, depth)
	}
	return res, nil
}

func (r *report) writeDepth(b *strings.Builder) {
	if len(r.depth) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## In-kernel cost per on-CPU sample, by Python stack depth\n\n")
	fmt.Fprintf(b, "One busy thread whose Python stack is DEPTH frames deep (`taskset -c %d %s testdata/python/depth.py DEPTH`),\n"+
		"sampled at 100 Hz for %s by an in-process Session (CPU only).\n", targetCPU, r.cfg.python, r.cfg.duration)
	b.WriteString("*Per sample* divides the program's whole run time by the samples of the target, so it also carries\n" +
		"the ticks that landed on other threads and left at once: it is the conservative, all-in figure. *Floor* is\n" +
		"what as many runs of an empty program cost, measured beside it on the same ticks (an empty perf_event\n" +
		"program on its own cpu-clock events, `bench/floor.go`); *above the floor* is what bprof's program adds.\n" +
		"Native frames are the median of the profile's file-backed frames per sample.\n\n")
	b.WriteString("| Python depth | native frames | samples | program runs | ns per run | empty program, ns per run | µs per sample, all in | floor, µs per sample | above the floor, µs | goal (above the floor) | met |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, d := range r.depth {
		goal, met := "", ""
		switch d.depth {
		case 16:
			goal, met = "≤ 3 µs", yes(d.aboveFloor() <= 3000)
		case 64:
			goal, met = "≤ 5 µs", yes(d.aboveFloor() <= 5000)
		}
		fmt.Fprintf(b, "| %d | %.0f | %d | %d | %.0f | %.0f | %.2f | %.2f | %.2f | %s | %s |\n", d.depth, d.natives, d.samples, d.runs,
			d.nsPerRun, d.floorPerRun, d.nsPerSample/1000, d.floorPerSample()/1000, d.aboveFloor()/1000, goal, met)
	}
	b.WriteString("\nA sample captures the kernel stack with `bpf_get_stack` and the user stack with bprof's own frame-pointer\n" +
		"walk, then walks the Python frames. Depth 128 is the walk's limit (deeper stacks end in `[truncated]`).\n")
}
