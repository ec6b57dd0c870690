package main

import (
	"fmt"
	"log"
	"os"
	"strings"
	"time"
)

// slowdownTools are the configurations of the slowdown table; "" is the
// control, the workload with no tool.
var slowdownTools = []string{"", "bprof", "bprof CPU+wall", "perf record -g", "austin -s"}

type slowdownResult struct {
	rounds     int
	iterations int
	// wall and cpu hold, per configuration, the workload's own elapsed and
	// thread CPU seconds, one per round.
	wall, cpu map[string][]float64
	command   map[string]string
	workload  string
}

// ratios are each round's figure divided by the control's of the same round:
// pairing within a round cancels the drift between rounds.
func (s slowdownResult) ratios(xs map[string][]float64, name string) []float64 {
	var r []float64
	for i, x := range xs[name] {
		if i < len(xs[""]) && xs[""][i] > 0 {
			r = append(r, x/xs[""][i])
		}
	}
	return r
}

// slowdown times a fixed amount of pure-Python work under each tool, the
// target pinned to targetCPU and the tool to toolCPU, in rounds that run
// every configuration once, each round starting one further along the list.
func slowdown(c *chroot, rounds, iterations int) (slowdownResult, error) {
	res := slowdownResult{rounds: rounds, iterations: iterations,
		wall: map[string][]float64{}, cpu: map[string][]float64{}, command: map[string]string{}}
	tmp, err := os.MkdirTemp("", "bprof-slowdown-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	tools := toolset(c, tmp)
	for _, name := range slowdownTools[1:] {
		res.command[name] = tools[name].command()
	}
	argv, err := c.python("fixed_work.py", fmt.Sprint(iterations))
	if err != nil {
		return res, err
	}
	res.workload = fmt.Sprintf("taskset -c %d chroot ROOT python3 fixed_work.py %d", targetCPU, iterations)
	for round := 0; round < rounds; round++ {
		for k := range slowdownTools {
			name := slowdownTools[(round+k)%len(slowdownTools)]
			wall, cpu, err := timedRun(tools, name, pinned(targetCPU, argv), tmp)
			if err != nil {
				return res, fmt.Errorf("round %d, %q: %w", round+1, name, err)
			}
			res.wall[name] = append(res.wall[name], wall)
			res.cpu[name] = append(res.cpu[name], cpu)
		}
		log.Printf("slowdown: round %d of %d: control %.2f s", round+1, rounds, res.wall[""][round])
	}
	return res, nil
}

// timedRun starts the workload, the tool (none for the control), gives the
// tool a second to settle, then lets the workload run and returns its own
// figures. A tool ends with its target.
func timedRun(tools map[string]tool, name string, target []string, tmp string) (wall, cpu float64, err error) {
	w, err := launch(target)
	if err != nil {
		return 0, 0, err
	}
	defer w.stop()
	var r *running
	if name == "" {
		time.Sleep(time.Second)
	} else if r, err = startTool(tools[name], w.pid(), tmp); err != nil {
		return 0, 0, err
	}
	var out struct{ Wall, CPU float64 }
	if err := w.begin(); err != nil {
		return 0, 0, err
	}
	err = w.result(&out)
	if r != nil {
		if werr := r.wait(); werr != nil {
			log.Printf("slowdown: %s: %v", name, werr)
		}
		r.log.Close()
	}
	return out.Wall, out.CPU, err
}

func (s *slowdownResult) write(b *strings.Builder) {
	b.WriteString("\n## Target slowdown at ~100 Hz\n\n")
	fmt.Fprintf(b, "A fixed amount of pure-Python work, 16 frames deep (`%s`), pinned to CPU %d; the tool\n"+
		"pinned to CPU %d. %d rounds; each round runs every configuration once, starting one further along the list each\n"+
		"round, and each tool gets a second to attach before the work starts. The workload times itself: *wall* is its\n"+
		"elapsed time, *CPU* its thread CPU time (`time.thread_time()`), which on this kernel (no IRQ time accounting)\n"+
		"includes the sampling interrupts and BPF programs run on its CPU but not the time other processes take from it.\n"+
		"A ratio divides a run by the control run of the same round; the table gives the median ratio, its interquartile\n"+
		"range and its min–max.\n\n", s.workload, targetCPU, toolCPU, s.rounds)
	cw := s.wall[""]
	cLo, cHi := spread(cw)
	cMed := median(cw)
	ccLo, ccHi := spread(s.cpu[""])
	ccMed := median(s.cpu[""])
	b.WriteString("| configuration | wall: median ratio | IQR | min–max | CPU: median ratio | IQR | min–max |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(b, "| control (no tool): %.2f s wall, %.2f s CPU (medians) | 1 | | %.3f–%.3f | 1 | | %.3f–%.3f |\n",
		cMed, ccMed, cLo/cMed, cHi/cMed, ccLo/ccMed, ccHi/ccMed)
	for _, name := range slowdownTools[1:] {
		w, c := s.ratios(s.wall, name), s.ratios(s.cpu, name)
		if len(w) == 0 {
			continue
		}
		wq1, wq3 := quartiles(w)
		wlo, whi := spread(w)
		cq1, cq3 := quartiles(c)
		clo, chi := spread(c)
		fmt.Fprintf(b, "| %s | %.3f | %.3f–%.3f | %.3f–%.3f | %.3f | %.3f–%.3f | %.3f–%.3f |\n",
			name, median(w), wq1, wq3, wlo, whi, median(c), cq1, cq3, clo, chi)
	}
	b.WriteString("\nThe control's own spread (each control run over the control median) is what identical runs do here; a\n" +
		"ratio inside it is not a measured slowdown. Commands (PID is the target):\n\n")
	for _, name := range slowdownTools[1:] {
		fmt.Fprintf(b, "- %s: `%s`\n", name, strings.ReplaceAll(s.command[name], chrootRoot(), "ROOT"))
	}
}
