package main

import (
	"encoding/json"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/memory"
)

// memoryConfigs are the configurations of the memory overhead table; ""
// is the control, the workload as it is.
var memoryConfigs = []string{"", "sampler on, no bprof", "bprof record --memory", "tracemalloc"}

type memoryResult struct {
	rounds, iterations int
	python, workload   string
	control            []float64            // CPU seconds of every control run
	ratio              map[string][]float64 // by configuration: its CPU time over its control's, a pair per round
	sampled            []uint64             // allocations bprof sampled, per round
	parts              []memoryParts
}

// memoryParts is where the time of one bprof run went, over the timed work
// only: the kernel's accounting of each BPF program (bpf_stats), bprof's own
// CPU time (on the other CPU) and the sampler's counters.
type memoryParts struct {
	progs          map[string]progCost // by program name
	tool           time.Duration       // bprof's CPU time
	sampled, freed uint64              // the sampler's alloc and free probe calls
}

// memoryOverhead times a fixed allocation-heavy workload (pyenv's CPython,
// loading the sampler as bprof_client does) with the sampler sampling but
// nothing attached, under bprof record --memory at the default rate, and
// under tracemalloc (1 frame), each beside a control run of the workload as
// it is, at the same time on the same CPU. Run one after the other, two
// identical runs differ by ±15–30 % here, as the vCPU's speed drifts; run
// side by side, sharing the CPU in slices of milliseconds, they see the same
// drift, and their CPU times differ by a few percent at most.
func memoryOverhead(python string, rounds, iterations int) (memoryResult, error) {
	res := memoryResult{rounds: rounds, iterations: iterations, python: python, ratio: map[string][]float64{}}
	tmp, err := os.MkdirTemp("", "bprof-memory-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755)
	lib := filepath.Join(tmp, memory.LibraryName())
	if err := os.WriteFile(lib, memory.Library(), 0o644); err != nil {
		return res, err
	}
	// Run-time accounting of BPF programs costs two clock reads a run, a
	// fraction of a percent of the fastest program here; every round has it.
	stats, err := enableStats()
	if err != nil {
		return res, err
	}
	defer stats.Close()
	script, _ := filepath.Abs("testdata/bench/alloc_work.py")
	pydir, _ := filepath.Abs("python")
	res.workload = fmt.Sprintf("taskset -c %d %s alloc_work.py %d", targetCPU, python, iterations)
	control := pinnedEnv(targetCPU, nil, []string{python, script, fmt.Sprint(iterations)})
	configs := memoryConfigs[1:]
	for round := 0; round < rounds; round++ {
		for k := range configs {
			name := configs[(round+k)%len(configs)]
			argv := []string{python, script, fmt.Sprint(iterations)}
			var env []string
			switch name {
			case "sampler on, no bprof":
				argv = append(argv, "--load", lib, pydir, "--enable")
			case "bprof record --memory":
				argv = append(argv, "--load", lib, pydir)
			case "tracemalloc":
				env = []string{"PYTHONTRACEMALLOC=1"}
			}
			ctl, cpu, parts, err := memoryPair(name, control, pinnedEnv(targetCPU, env, argv), tmp, round%2 == 0)
			if err != nil {
				return res, fmt.Errorf("round %d, %q: %w", round+1, name, err)
			}
			res.control = append(res.control, ctl)
			res.ratio[name] = append(res.ratio[name], cpu/ctl)
			if name == "bprof record --memory" {
				res.sampled = append(res.sampled, parts.sampled)
				res.parts = append(res.parts, parts)
			}
		}
		log.Printf("memory: round %d of %d: bprof %.3f, sampler alone %.3f", round+1, rounds,
			res.ratio["bprof record --memory"][round], res.ratio["sampler on, no bprof"][round])
	}
	return res, nil
}

func pinnedEnv(cpu int, env, argv []string) []string {
	if len(env) > 0 {
		argv = append(append([]string{"env"}, env...), argv...)
	}
	return pinned(cpu, argv)
}

// progsByName is the accounting of every BPF program pid holds, by name.
func progsByName(pid int) map[string]progCost {
	m := map[string]progCost{}
	ids, err := programsOf(pid)
	if err != nil {
		return m
	}
	for _, id := range ids {
		c, err := costOfProgram(id)
		if err == nil {
			m[c.names[0]] = c
		}
	}
	return m
}

// memoryPair runs the control and one configuration at once on the same
// CPU (under bprof, once its sampler is on) and returns their CPU times.
// The one told to start first alternates with first.
func memoryPair(name string, control, target []string, tmp string, first bool) (ctlCPU, cpu float64, parts memoryParts, err error) {
	c, err := launch(control)
	if err != nil {
		return 0, 0, parts, err
	}
	defer c.stop()
	w, err := launch(target)
	if err != nil {
		return 0, 0, parts, err
	}
	defer w.stop()
	var r *running
	var smp *memory.Sampler
	if name == "bprof record --memory" {
		t := tool{name: "bprof memory", out: tmp, progs: isPerfEvent, argv: func(pid int) []string {
			return []string{"bin/bprof", "record", "-p", fmt.Sprint(pid), "--memory", "--no-offcpu", "-o", filepath.Join(tmp, "mem.pb.gz")}
		}}
		if r, err = startTool(t, w.pid(), tmp); err != nil {
			return 0, 0, parts, err
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if s, ferr := memory.Find(w.pid()); ferr == nil {
				if c, rerr := s.Read(); rerr == nil && c.Enabled {
					smp = s
					break
				}
				s.Close()
			}
			if time.Now().After(deadline) {
				r.stop()
				return 0, 0, parts, fmt.Errorf("bprof did not turn the sampler on within 20 s: %s", r.logTail())
			}
		}
		defer smp.Close()
	} else {
		time.Sleep(time.Second)
	}
	var before memory.Ctl
	var progs0 map[string]progCost
	var tool0 time.Duration
	if smp != nil {
		before, _ = smp.Read()
		progs0, tool0 = progsByName(r.pid()), onCPU(r.pid())
	}
	pair := []*workload{c, w}
	if !first {
		pair[0], pair[1] = w, c
	}
	for _, x := range pair {
		if err := x.begin(); err != nil {
			return 0, 0, parts, err
		}
	}
	var out, ctlOut struct{ Wall, CPU float64 }
	line, rerr := w.out.ReadString('\n')
	if smp != nil {
		after, _ := smp.Read()
		parts.tool = onCPU(r.pid()) - tool0
		parts.progs = map[string]progCost{}
		for n, c := range progsByName(r.pid()) {
			parts.progs[n] = c.sub(progs0[n])
		}
		parts.sampled, parts.freed = after.Sampled-before.Sampled, after.Freed-before.Freed
	}
	if rerr == nil {
		err = jsonLine(line, &out)
	} else {
		err = rerr
	}
	w.cmd.Wait()
	if r != nil {
		if werr := r.wait(); werr != nil {
			log.Printf("memory: %v", werr)
		}
		r.log.Close()
	}
	if cerr := c.result(&ctlOut); err == nil {
		err = cerr
	}
	return ctlOut.CPU, out.CPU, parts, err
}

func (m *memoryResult) write(b *strings.Builder) {
	b.WriteString("\n## Memory profiles: slowdown of an allocation-heavy workload\n\n")
	fmt.Fprintf(b, "`%s`: request-like work that makes and drops dicts, lists, strings and bytes\n"+
		"(all through CPython's object and mem allocators), pinned to CPU %d, bprof on CPU %d. Configurations: with\n"+
		"bprof's allocation sampler loaded and sampling (one allocation per 512 KiB on average) but nothing attached to\n"+
		"its probes (the in-process cost alone); under `bprof record --memory --no-offcpu` at the default rate (the\n"+
		"sampler loaded by the workload as bprof_client does, turned on by bprof once its uprobes are attached; the\n"+
		"figure includes bprof's 100 Hz CPU sampling); and under `tracemalloc` (`PYTHONTRACEMALLOC=1`, one frame), the\n"+
		"standard library's peer. Each configuration runs side by side with a control run (the workload as it is):\n"+
		"both at once on CPU %d, sharing it, so that both see the same drift of the vCPU's speed, which moves runs made\n"+
		"one after the other by ±15–30 %% here. The ratio is the configuration's CPU time (`time.thread_time()`, which\n"+
		"includes the traps and BPF programs run in its context) over its control's. %d rounds, the configurations in\n"+
		"a rotating order, the one started first alternating. Median ratio, interquartile range, min–max.\n\n",
		m.workload, targetCPU, toolCPU, targetCPU, m.rounds)
	b.WriteString("| configuration | CPU: median ratio to its control | IQR | min–max |\n|---|---|---|---|\n")
	fmt.Fprintf(b, "| control: %.2f s CPU (median of %d runs) | 1 | | |\n", median(m.control), len(m.control))
	for _, name := range memoryConfigs[1:] {
		c := m.ratio[name]
		if len(c) == 0 {
			continue
		}
		q1, q3 := quartiles(c)
		lo, hi := spread(c)
		fmt.Fprintf(b, "| %s | %.3f | %.3f–%.3f | %.3f–%.3f |\n", name, median(c), q1, q3, lo, hi)
	}
	var s []float64
	for _, n := range m.sampled {
		s = append(s, float64(n))
	}
	fmt.Fprintf(b, "\nbprof sampled a median of %.0f allocations a run.\n", median(s))
	m.writeParts(b)
}

// writeParts says where the time of the bprof runs went (medians over the
// rounds): each BPF program's run time (bpf_stats; the uprobe trap around a
// program is not in there), the in-kernel time per sampled allocation and
// its share of the control's CPU time, and bprof's own CPU time.
func (m *memoryResult) writeParts(b *strings.Builder) {
	if len(m.parts) == 0 {
		return
	}
	names := map[string]bool{}
	for _, p := range m.parts {
		for n := range p.progs {
			names[n] = true
		}
	}
	b.WriteString("\nWhere bprof's time went during the timed work of its runs (medians over the rounds). BPF run time is\n" +
		"the kernel's accounting (`bpf_stats`), without the trap that enters a uprobe; `bprof_cpu` runs on every\n" +
		"100 Hz tick of both CPUs, whoever runs there.\n\n| part | runs | µs a run | ms in all |\n|---|---|---|---|\n")
	for _, n := range slices.Sorted(maps.Keys(names)) {
		var runs, per, total []float64
		for _, p := range m.parts {
			c := p.progs[n]
			runs = append(runs, float64(c.runs))
			total = append(total, float64(c.runtime)/1e6)
			if c.runs > 0 {
				per = append(per, float64(c.runtime)/1e3/float64(c.runs))
			}
		}
		if median(runs) == 0 {
			continue
		}
		fmt.Fprintf(b, "| BPF %s | %.0f | %.1f | %.1f |\n", n, median(runs), median(per), median(total))
	}
	var tool, freed []float64
	for _, p := range m.parts {
		tool = append(tool, float64(p.tool)/1e6)
		freed = append(freed, float64(p.freed))
	}
	fmt.Fprintf(b, "| bprof's own CPU (user+sys, on CPU %d) | | | %.1f |\n", toolCPU, median(tool))
	per := m.perSampled()
	fmt.Fprintf(b, "\nThe sampler reported a median of %.0f frees of sampled blocks a run (they leave its live set, which bprof\n"+
		"copies at each cut: no probe). `bprof_alloc` took %.1f µs of BPF run time per sampled allocation, %.2f %% of\n"+
		"the control's CPU time at this run's sample count (the trap into the probe comes on top).\n",
		median(freed), per/1e3, m.bpfShare()*100)
}

// perSampled is the median BPF run time of bprof_alloc per sampled
// allocation, in ns.
func (m *memoryResult) perSampled() float64 {
	var per []float64
	for _, p := range m.parts {
		if p.sampled > 0 {
			per = append(per, float64(p.progs["bprof_alloc"].runtime)/float64(p.sampled))
		}
	}
	return median(per)
}

// bpfShare is the BPF run time of the memory programs over a run, as a
// share of the control's CPU time (medians).
func (m *memoryResult) bpfShare() float64 {
	c := median(m.control)
	if c == 0 {
		return 0
	}
	var s []float64
	for _, n := range m.sampled {
		s = append(s, float64(n))
	}
	return m.perSampled() * median(s) / 1e9 / c
}

// goal: the overhead goal for memory profiles.
func (m *memoryResult) goal() goal {
	r := median(m.ratio["bprof record --memory"])
	return goal{"memory profiles: slowdown of an allocation-heavy workload ≤ 3 % at the default rate (tracemalloc beside it)",
		fmt.Sprintf("%.1f %% of CPU time beside a control run (tracemalloc %.0f %%)", (r-1)*100, (median(m.ratio["tracemalloc"])-1)*100), r <= 1.03}
}

func jsonLine(line string, v any) error {
	if err := json.Unmarshal([]byte(line), v); err != nil {
		return fmt.Errorf("workload result %q: %w", line, err)
	}
	return nil
}
