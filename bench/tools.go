package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"
)

// tool is a profiler the bench runs against a target: bprof itself or a peer.
// Every tool runs until the target exits or it gets SIGINT.
type tool struct {
	name string
	out  string  // the directory its output goes to, shown as OUT
	hz   float64 // samples per second of CPU time it asks for
	// argv profiles pid, writing what it writes to a file in dir (a host
	// path; for a tool inside the root, the root's /tmp/bprof-bench).
	argv func(pid int) []string
	// progs selects the tool's BPF programs whose run time is its in-kernel
	// cost; nil for a tool with none (perf samples from the kernel's own
	// code, austin from user space).
	progs func(ebpf.ProgramType) bool
}

// toolset builds the tools; out is the host directory for their output.
func toolset(c *chroot, out string) map[string]tool {
	bprof := func(extra ...string) func(int) []string {
		return func(pid int) []string {
			return append([]string{"bin/bprof", "record", "-p", fmt.Sprint(pid), "-o", filepath.Join(out, "bprof.pb.gz")}, extra...)
		}
	}
	bpftrace := func(key string) func(int) []string {
		return func(pid int) []string {
			return []string{"bpftrace", "-o", filepath.Join(out, "bpftrace.out"),
				"-e", fmt.Sprintf("profile:hz:99 /pid == %d/ { @[%s] = count(); }", pid, key)}
		}
	}
	ts := []tool{
		{name: "bprof", hz: 100, argv: bprof("--no-offcpu"), progs: isPerfEvent},
		{name: "bprof CPU+wall", hz: 100, argv: bprof(), progs: isPerfEvent},
		{name: "bpftrace ustack", hz: 99, argv: bpftrace("ustack"), progs: isPerfEvent},
		{name: "bpftrace ustack+kstack", hz: 99, argv: bpftrace("kstack, ustack"), progs: isPerfEvent},
		{name: "libbpf-tools profile", hz: 99, progs: isPerfEvent, argv: func(pid int) []string {
			return c.cmd("profile-libbpf", "-F", "99", "-p", fmt.Sprint(pid))
		}},
		{name: "perf record -g", hz: 99, argv: func(pid int) []string {
			return []string{"perf", "record", "-q", "-F", "99", "-g", "-p", fmt.Sprint(pid), "-o", filepath.Join(out, "perf.data")}
		}},
		{name: "offcputime", progs: isSchedProgram, argv: func(pid int) []string {
			return []string{"offcputime", "-p", fmt.Sprint(pid)}
		}},
		{name: "austin -s", hz: 100, argv: func(pid int) []string {
			return c.cmd("austin", "-s", "-i", "10ms", "-p", fmt.Sprint(pid), "-o", filepath.Join(chrootInside, "austin.out"))
		}},
	}
	m := map[string]tool{}
	for _, t := range ts {
		t.out = out
		m[t.name] = t
	}
	return m
}

// command shows a tool's command line as the report prints it.
func (t tool) command() string {
	argv := t.argv(12345)
	for i, a := range argv {
		if strings.ContainsAny(a, " {}[]") {
			argv[i] = "'" + a + "'"
		}
	}
	s := strings.ReplaceAll(strings.Join(argv, " "), "12345", "PID")
	return strings.ReplaceAll(s, t.out, "OUT")
}

// running is a tool started against a target, under GNU time (rusage.go).
type running struct {
	tool tool
	m    *measured
	log  *os.File
}

// startTool runs t against pid on toolCPU and waits until it samples: its
// BPF programs are loaded (bprof and the BPF peers), or a second has gone
// by (perf and austin attach within milliseconds).
func startTool(t tool, pid int, logDir string) (*running, error) {
	log, err := os.Create(filepath.Join(logDir, strings.ReplaceAll(t.name, " ", "_")+".log"))
	if err != nil {
		return nil, err
	}
	m, err := startMeasured(toolCPU, t.argv(pid), log, log, logDir)
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", t.name, err)
	}
	r := &running{tool: t, m: m, log: log}
	if t.progs != nil {
		if err := waitPrograms(r.pid(), t.progs, 30*time.Second); err != nil {
			r.stop()
			return nil, fmt.Errorf("%s: %w: %s", t.name, err, r.logTail())
		}
	}
	time.Sleep(time.Second)
	return r, nil
}

// pid is the tool's own process.
func (r *running) pid() int { return r.m.child }

// stop interrupts the tool (each writes its output then) and waits for it.
// How it then exits is not checked: perf re-raises the signal, austin exits
// with a status of its own.
func (r *running) stop() error {
	defer r.log.Close()
	if r.m.cmd.ProcessState != nil {
		return nil
	}
	r.m.signal(os.Interrupt)
	if waitExit(r.m.cmd, time.Minute) == errTimeout {
		return fmt.Errorf("%s did not stop within a minute of SIGINT: %s", r.tool.name, r.logTail())
	}
	return nil
}

// wait waits for a tool that ends with its target, killing it after a minute.
func (r *running) wait() error {
	if r.m.cmd.ProcessState != nil {
		return nil
	}
	if err := waitExit(r.m.cmd, time.Minute); err != nil {
		return fmt.Errorf("%s: %w: %s", r.tool.name, err, r.logTail())
	}
	return nil
}

// usage is the tool's whole-life CPU time and peak RSS, once it exited.
func (r *running) usage() (cpu time.Duration, maxRSS int64) { return r.m.usage() }

func (r *running) logTail() string {
	b, _ := os.ReadFile(r.log.Name())
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	return strings.TrimSpace(string(b))
}
