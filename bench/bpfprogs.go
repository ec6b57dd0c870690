package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// A peer's BPF programs are found through the file descriptors its process
// holds (/proc/PID/fdinfo shows prog_id for each program fd), not by name or
// by load order: the other engineers' tests load programs on this machine
// at the same time, and those must not be counted as the peer's.

// progCost is the kernel's accounting (bpf_stats) of a set of programs.
type progCost struct {
	runs    uint64
	runtime time.Duration
	names   []string
}

func (a progCost) sub(b progCost) progCost {
	return progCost{runs: a.runs - b.runs, runtime: a.runtime - b.runtime, names: a.names}
}

// programsOf returns the IDs of the BPF programs process pid holds open.
func programsOf(pid int) ([]ebpf.ProgramID, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list fds of %d: %w", pid, err)
	}
	seen := map[ebpf.ProgramID]bool{}
	var ids []ebpf.ProgramID
	for _, e := range ents {
		id, ok := fdProgID(filepath.Join(dir, e.Name()))
		if ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// fdProgID reads the prog_id line of one fdinfo file; an fd that closed
// meanwhile or is no program reports false.
func fdProgID(path string) (ebpf.ProgramID, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "prog_id:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			return ebpf.ProgramID(n), err == nil
		}
	}
	return 0, false
}

// costOf sums the run counts and run times of the programs of pid whose
// type keep accepts.
func costOf(pid int, keep func(ebpf.ProgramType) bool) (progCost, error) {
	var c progCost
	ids, err := programsOf(pid)
	if err != nil {
		return c, err
	}
	for _, id := range ids {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded since the fd was listed
		}
		info, err := p.Info()
		if err != nil || !keep(info.Type) {
			p.Close()
			continue
		}
		st, err := p.Stats()
		p.Close()
		if err != nil {
			return c, fmt.Errorf("read run time of program %d: %w", id, err)
		}
		c.runs += st.RunCount
		c.runtime += st.Runtime
		c.names = append(c.names, info.Name)
	}
	return c, nil
}

// costOfProgram is the accounting of one program.
func costOfProgram(id ebpf.ProgramID) (progCost, error) {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return progCost{}, fmt.Errorf("open program %d: %w", id, err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return progCost{}, fmt.Errorf("program %d: %w", id, err)
	}
	st, err := p.Stats()
	if err != nil {
		return progCost{}, fmt.Errorf("read run time of program %d: %w", id, err)
	}
	return progCost{runs: st.RunCount, runtime: st.Runtime, names: []string{info.Name}}, nil
}

func isPerfEvent(t ebpf.ProgramType) bool { return t == ebpf.PerfEvent }

// isSchedProgram accepts the program types an off-CPU tracer hooks
// sched_switch with (tp_btf is Tracing, the fallbacks raw and classic
// tracepoints).
func isSchedProgram(t ebpf.ProgramType) bool {
	return t == ebpf.Tracing || t == ebpf.RawTracepoint || t == ebpf.TracePoint
}

// waitPrograms waits until pid holds a program keep accepts: the tool has
// loaded what it samples with. It gives up after limit.
func waitPrograms(pid int, keep func(ebpf.ProgramType) bool, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c, err := costOf(pid, keep); err == nil && len(c.names) > 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("process %d loaded no BPF program within %s", pid, limit)
}

// enableStats turns on the kernel's run-time accounting of BPF programs
// until the returned closer is closed.
func enableStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		return nil, fmt.Errorf("enable BPF stats: %w", err)
	}
	return c, nil
}
