package main

import (
	"context"
	"fmt"
	"log"
	"runtime"
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/profiler"
	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/google/pprof/profile"
)

// A Session names frames as samples arrive, inside its read loop, so its
// symbolization cannot be timed from outside. The bench therefore measures
// it twice:
//   - end to end: an in-process Session cuts a batch every period, and the
//     bench reads its own CPU time and Go heap at each cut (the bench does
//     nothing else meanwhile);
//   - alone: the native addresses of those batches, as the Session recorded
//     them, are named again by a fresh, cold symbolize.Native (and the
//     Python symbolizer attached anew), timed per batch.

type symBatch struct {
	samples  int64
	files    int           // distinct generated libraries with samples in the batch
	newFiles int           // of which none of the earlier batches had
	cpu      time.Duration // the bench's CPU time over the period (end to end)
	replay   time.Duration // naming the batch's native frames again
}

type symbolizeResult struct {
	libs      int
	mapped    int           // files of the target's mappings
	period    time.Duration // one batch
	add       time.Duration // Session.Add: reading the maps, finding CPython
	attach    time.Duration // replay: Python.Attach on cold caches
	batches   []symBatch
	allocated uint64 // replay, first batch: bytes allocated
	retained  uint64 // replay, first batch: heap kept after a GC
}

// symbolizeCost profiles the many-libraries workload in batches of period
// and measures the naming of native frames, first batch and steady state.
func symbolizeCost(python string, libs, batches int, period time.Duration) (symbolizeResult, error) {
	res := symbolizeResult{libs: libs, period: period}
	cmd, err := startManyLibs(python, libs, time.Duration(batches)*period+2*time.Minute)
	if err != nil {
		return res, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	if maps, err := process.ReadMaps(pid); err == nil {
		files := map[string]bool{}
		for _, m := range maps {
			if strings.HasPrefix(m.Path, "/") {
				files[m.Path] = true
			}
		}
		res.mapped = len(files)
	}
	profiles, err := sessionBatches(&res, pid, batches, period)
	if err != nil {
		return res, err
	}
	if err := replay(&res, pid, profiles); err != nil {
		return res, err
	}
	return res, nil
}

// sessionBatches runs a CPU-only Session on pid and cuts a profile every
// period, noting the bench's CPU time and Go heap at each cut.
func sessionBatches(res *symbolizeResult, pid, batches int, period time.Duration) ([]*profile.Profile, error) {
	s, err := profiler.NewSession(profiler.Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	cpu0 := selfCPU()
	start := time.Now()
	if err := s.Add(pid); err != nil {
		return nil, err
	}
	res.add = time.Since(start)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var profiles []*profile.Profile
	seen := map[string]bool{}
	for range batches {
		time.Sleep(period - time.Since(start)%period)
		p, _, _ := s.Cut()
		cpu := selfCPU()
		b := symBatch{cpu: cpu - cpu0}
		cpu0 = cpu
		files := map[string]bool{}
		for _, smp := range p.Sample {
			b.samples += smp.Value[0]
			for _, loc := range smp.Location {
				if loc.Mapping != nil && strings.Contains(loc.Mapping.File, "libbench") {
					files[loc.Mapping.File] = true
				}
			}
		}
		for f := range files {
			if !seen[f] {
				seen[f] = true
				b.newFiles++
			}
		}
		b.files = len(files)
		res.batches = append(res.batches, b)
		profiles = append(profiles, p)
	}
	cancel()
	if err := <-done; err != nil {
		return nil, fmt.Errorf("run session: %w", err)
	}
	return profiles, nil
}

// replay names the batches' native frames again with cold caches.
func replay(res *symbolizeResult, pid int, profiles []*profile.Profile) error {
	native := symbolize.NewNative(process.NewCache())
	py := symbolize.NewPython(native)
	runtime.GC()
	var m0, m1, m2 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	if _, _, err := py.Attach(pid); err != nil {
		return fmt.Errorf("attach to CPython in %d: %w", pid, err)
	}
	res.attach = time.Since(start)
	var frames []symbolize.Frame
	for i, p := range profiles {
		stacks := nativeStacks(p)
		start := time.Now()
		for _, st := range stacks {
			frames = native.Symbolize(pid, st, frames[:0])
		}
		res.batches[i].replay = time.Since(start)
		if i == 0 {
			runtime.ReadMemStats(&m1)
			runtime.GC()
			runtime.ReadMemStats(&m2)
			res.allocated = m1.TotalAlloc - m0.TotalAlloc
			res.retained = m2.HeapAlloc - min(m2.HeapAlloc, m0.HeapAlloc)
		}
	}
	log.Printf("symbolize: first batch %s (attach %s), then %s per batch", res.batches[0].replay+res.attach, res.attach, res.steadyReplay())
	return nil
}

// nativeStacks are the native frame addresses of every sample of p, leaf
// first, once per sample counted (a Session names each sample it reads).
func nativeStacks(p *profile.Profile) [][]uint64 {
	var out [][]uint64
	for _, s := range p.Sample {
		var addrs []uint64
		for _, loc := range s.Location {
			if loc.Address != 0 && loc.Mapping != nil && !strings.HasPrefix(loc.Mapping.File, "[") {
				addrs = append(addrs, loc.Address)
			}
		}
		for range s.Value[0] {
			out = append(out, addrs)
		}
	}
	return out
}

// steadyReplay is the median replay time of the batches after the first.
func (r symbolizeResult) steadyReplay() time.Duration {
	var xs []float64
	for _, b := range r.batches[1:] {
		xs = append(xs, float64(b.replay))
	}
	return time.Duration(median(xs))
}

// steadyCPU is the median end-to-end CPU time of the batches after the first.
func (r symbolizeResult) steadyCPU() time.Duration {
	var xs []float64
	for _, b := range r.batches[1:] {
		xs = append(xs, float64(b.cpu))
	}
	return time.Duration(median(xs))
}

// selfCPU is the bench process's user+sys time.
func selfCPU() time.Duration { return selfTimes().total() }

func (s *symbolizeResult) write(b *strings.Builder) {
	b.WriteString("\n## Symbolization with hundreds of shared objects\n\n")
	fmt.Fprintf(b, "`testdata/bench/many_libs.py DIR %d SECONDS` on the host Python: %d tiny C libraries generated and built at\n"+
		"bench time (`bench/manylibs.go`, four exported functions each, cached in the temp directory), loaded with\n"+
		"ctypes and called in turn, with a little pure Python between them: %d files mapped in all, libpython among\n"+
		"them. An in-process CPU-only Session cuts a batch every %s. Two figures per batch:\n\n"+
		"- *Session CPU*: the bench's user+sys over the period, in which it does nothing but run the Session (reading\n"+
		"  the ring buffer, naming every frame, building the profile); the first period starts at `Session.Add`.\n"+
		"- *Naming native frames*: the batch's native addresses, as the Session recorded them (every sample, leaf\n"+
		"  first), named again by a fresh `symbolize.Native` on a cold `process.Cache`, after a fresh\n"+
		"  `symbolize.Python` attached to the process. That isolates the symbolizer: the first batch reads\n"+
		"  /proc/PID/maps and parses every library it hits; later ones mostly look up parsed files.\n\n",
		s.libs, s.libs, s.mapped, s.period)
	b.WriteString("| batch | samples | generated libraries hit (new) | Session CPU | naming native frames |\n|---|---|---|---|---|\n")
	for i, bt := range s.batches {
		fmt.Fprintf(b, "| %d | %d | %d (%d) | %s | %s |\n", i+1, bt.samples, bt.files, bt.newFiles,
			bt.cpu.Round(time.Millisecond), bt.replay.Round(10*time.Microsecond))
	}
	fmt.Fprintf(b, "\nFirst batch: `Session.Add` took %s (maps, finding CPython, its thread states); naming took %s after a\n"+
		"%s Python attach, allocated %.1f MB and kept %.1f MB of Go heap after a GC. Steady state (median of the later\n"+
		"batches): %s of Session CPU and %s of naming per batch.\n",
		s.add.Round(time.Millisecond), s.batches[0].replay.Round(10*time.Microsecond), s.attach.Round(time.Millisecond),
		float64(s.allocated)/1e6, float64(s.retained)/1e6, s.steadyCPU().Round(time.Millisecond), s.steadyReplay().Round(10*time.Microsecond))
}
