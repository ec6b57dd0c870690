package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Start-up is measured on the binary people run, from exec to the line in
// which it says it samples, by the scheduler's clock of all its threads:
// the Go runtime's start, the BPF programs and maps, the target's symbols
// and unwind tables. An in-process measure (NewSession and Add inside the
// bench) also pays for collecting the bench's own heap.

// startupResult is the CPU time to the first sample of each round.
type startupResult struct {
	record, agent []time.Duration
}

// startupGoal is issue 15's: CPU to the first sample, for record and agent.
const startupGoal = 150 * time.Millisecond

// startupCommand is one way to start bprof on pid, and the stderr line that
// says its start-up is over (record's "recording", the agent's "agent started").
type startupCommand struct {
	argv  []string
	ready string
}

func startupCommands(pid int, dir string) (record, agent startupCommand) {
	p := fmt.Sprint(pid)
	record = startupCommand{[]string{"bin/bprof", "record", "-p", p, "-d", "1m", "-o", filepath.Join(dir, "startup.pb.gz")}, "bprof: recording"}
	agent = startupCommand{[]string{"bin/bprof", "agent", "-p", p, "--output-dir", dir}, "agent started"}
	return record, agent
}

// startupCost starts record and agent on one busy thread of depth.py,
// alternately, rounds times each.
func startupCost(python string, rounds int) (startupResult, error) {
	var res startupResult
	w, err := startWorkload(python, 16, 1, 10*time.Minute)
	if err != nil {
		return res, err
	}
	defer func() { w.Process.Kill(); w.Wait() }()
	dir, err := os.MkdirTemp("", "bprof-startup-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	record, agent := startupCommands(w.Process.Pid, dir)
	for range rounds {
		d, err := startupCPU(record)
		if err != nil {
			return res, err
		}
		res.record = append(res.record, d)
		if d, err = startupCPU(agent); err != nil {
			return res, err
		}
		res.agent = append(res.agent, d)
	}
	return res, nil
}

// startupCPU runs c until it prints its ready line and returns the CPU
// time it had used then; then it stops it (SIGINT, as a person would).
func startupCPU(c startupCommand) (time.Duration, error) {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", strings.Join(c.argv, " "), err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var said strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		said.WriteString(line + "\n")
		if strings.Contains(line, c.ready) {
			// Read at once: after the line, bprof only settles its heap.
			cpu := onCPU(cmd.Process.Pid)
			cmd.Process.Signal(syscall.SIGINT)
			go io.Copy(io.Discard, stderr)
			if err := cmd.Wait(); err != nil {
				return 0, fmt.Errorf("%s: %v: %s", strings.Join(c.argv[:2], " "), err, said.String())
			}
			return cpu, nil
		}
	}
	return 0, fmt.Errorf("%s ended before it said %q: %s", strings.Join(c.argv[:2], " "), c.ready, said.String())
}

func (s startupResult) goals() []goal {
	var gs []goal
	for _, c := range []struct {
		name string
		d    []time.Duration
	}{{"bprof record -p PID", s.record}, {"bprof agent -p PID", s.agent}} {
		if len(c.d) == 0 {
			continue
		}
		m := medianDuration(c.d)
		gs = append(gs, goal{fmt.Sprintf("start-up CPU to the first sample ≤ 150 ms (`%s`, median of %d)", c.name, len(c.d)),
			fmt.Sprintf("%s (%s–%s)", m.Round(time.Millisecond), minDuration(c.d).Round(time.Millisecond), maxDuration(c.d).Round(time.Millisecond)),
			m <= startupGoal})
	}
	return gs
}

func (r *report) writeStartup(b *strings.Builder) {
	s := r.startup
	if s == nil {
		return
	}
	fmt.Fprintf(b, "\n## Start-up\n\n"+
		"CPU time of the bprof process from exec to the line that says it samples (`bprof: recording`, `agent started`),\n"+
		"all its threads by the scheduler's clock (`/proc/PID/task/*/schedstat`), on one busy thread of\n"+
		"`testdata/python/depth.py 16` (%s); record and agent alternate, %d rounds each:\n\n", r.cfg.python, len(s.record))
	b.WriteString("| command | median | min | max |\n|---|---|---|---|\n")
	for _, c := range []struct {
		argv string
		d    []time.Duration
	}{{"`bin/bprof record -p PID -d 1m -o FILE`", s.record}, {"`bin/bprof agent -p PID --output-dir DIR`", s.agent}} {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", c.argv, medianDuration(c.d).Round(time.Millisecond),
			minDuration(c.d).Round(time.Millisecond), maxDuration(c.d).Round(time.Millisecond))
	}
}

func medianDuration(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

func minDuration(ds []time.Duration) time.Duration { return slices.Min(ds) }

func maxDuration(ds []time.Duration) time.Duration { return slices.Max(ds) }
