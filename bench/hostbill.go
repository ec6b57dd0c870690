package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The host bill (issue 15): what a system-wide agent costs a host that runs
// many Python processes, most of them idle, for minutes.
const (
	billIdle = 50 // Python processes asleep
	billBusy = 4  // Python processes each with one thread on the CPU
)

// hostBillResult is the agent's CPU and memory over the window.
type hostBillResult struct {
	window      time.Duration // from the agent's start to its stop
	steady      time.Duration // from the moment every process was being profiled
	cpu         time.Duration // the agent's CPU over the window, start-up included
	steadyCPU   time.Duration // its CPU over steady
	maxRSS      int64
	profiled    int // processes the agent said it profiles
	batches     int // batch files written
	command     string
	steadyShare float64 // steadyCPU / steady, of one core
}

// hostBill starts billIdle sleeping and billBusy spinning Python processes,
// then `bprof agent` system-wide for window, and measures it.
func hostBill(python string, window time.Duration) (hostBillResult, error) {
	var res hostBillResult
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	for i := 0; i < billIdle+billBusy; i++ {
		code := "import sys, time\nprint('ready', flush=True)\ntime.sleep(1e6)"
		if i >= billIdle {
			code = "import sys\nprint('ready', flush=True)\nwhile True: pass"
		}
		cmd, err := startReady(python, "-c", code)
		if err != nil {
			return res, fmt.Errorf("Python process %d: %w", i, err)
		}
		procs = append(procs, cmd)
	}
	out, err := os.MkdirTemp("", "bprof-hostbill-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(out)
	argv := []string{"bin/bprof", "agent", "--output-dir", out, "--application-name", "hostbill"}
	res.command = "`" + strings.Join(argv[:3], " ") + " DIR --application-name hostbill`"
	var stderr lockedBuffer
	start := time.Now()
	agent, err := startMeasured(-1, argv, nil, &stderr, "")
	if err != nil {
		return res, err
	}
	// Steady from when the agent said it profiles every process.
	deadline := time.Now().Add(time.Minute)
	for strings.Count(stderr.String(), "system-wide: profiling") < billIdle+billBusy {
		if time.Now().After(deadline) {
			agent.signal(syscall.SIGKILL)
			agent.cmd.Wait()
			return res, fmt.Errorf("agent profiled %d of %d processes within a minute:\n%s",
				strings.Count(stderr.String(), "system-wide: profiling"), billIdle+billBusy, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	steadyFrom, cpuFrom := time.Now(), processCPU(agent.child)
	time.Sleep(window - time.Since(start))
	cpuTo := processCPU(agent.child)
	res.steady = time.Since(steadyFrom)
	if err := agent.signal(syscall.SIGTERM); err != nil {
		return res, err
	}
	agent.cmd.Wait()
	res.window = time.Since(start)
	res.cpu, res.maxRSS = agent.usage()
	res.steadyCPU = cpuTo - cpuFrom
	res.steadyShare = res.steadyCPU.Seconds() / res.steady.Seconds()
	res.profiled = strings.Count(stderr.String(), "system-wide: profiling")
	batches, _ := filepath.Glob(filepath.Join(out, "*.pb.gz"))
	res.batches = len(batches)
	return res, nil
}

// hostBillGoals are issue 15's: ≤ 0.2 % of a core per busy thread and
// ≤ 32 MB of RSS for a system-wide agent over 50 processes.
func (h *hostBillResult) goals() []goal {
	return []goal{
		{fmt.Sprintf("host bill: system-wide agent ≤ %.1f %% of a core (0.2 %% per busy thread) over %d Python processes, %d busy", 0.2*billBusy, billIdle+billBusy, billBusy),
			fmt.Sprintf("%.2f %% after start-up, %.2f %% over %s with it", 100*h.steadyShare, 100*h.cpu.Seconds()/h.window.Seconds(), h.window.Round(time.Second)),
			h.steadyShare <= 0.002*billBusy},
		{"host bill: system-wide agent peak RSS ≤ 32 MB", fmt.Sprintf("%.1f MB", float64(h.maxRSS)/1e6), h.maxRSS <= 32e6},
	}
}

func (h *hostBillResult) write(b *strings.Builder) {
	b.WriteString("\n## Host bill: a system-wide agent over many Python processes\n\n")
	fmt.Fprintf(b, "%d Python processes asleep and %d each spinning one thread (`python -c`, the bench's Python), then %s\n"+
		"(system-wide: every CPython process, CPU and wall, 45 s batches to a directory) for %s; CPU from its rusage\n"+
		"and from /proc/PID/stat once it said it profiles every process (start-up excluded), peak RSS from rusage.\n\n",
		billIdle, billBusy, h.command, h.window.Round(time.Second))
	b.WriteString("| processes (busy) | window | agent CPU, all | after start-up | share of a core after start-up | peak RSS | batches | goal | met |\n|---|---|---|---|---|---|---|---|---|\n")
	met := h.steadyShare <= 0.002*billBusy && h.maxRSS <= 32e6
	fmt.Fprintf(b, "| %d (%d) | %s | %s | %s over %s | %.2f %% | %.1f MB | %d | ≤ %.1f %%, ≤ 32 MB | %s |\n",
		h.profiled, billBusy, h.window.Round(time.Second), h.cpu.Round(time.Millisecond), h.steadyCPU.Round(time.Millisecond),
		h.steady.Round(time.Second), 100*h.steadyShare, float64(h.maxRSS)/1e6, h.batches, 0.2*billBusy, yes(met))
}

// lockedBuffer is a bytes.Buffer a command writes to while the bench reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
