package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/profiler"
	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// pingpongSpin brings testdata/native/pingpong.c near 50,000 switches a
// second on this machine (measured: 48,500).
const pingpongSpin = 60000

type offcpuResult struct {
	switchesPerSec float64 // target context switches per second, while profiled
	nsPerSwitch    float64 // bprof_switch run time / target switches (conservative)
	runs           uint64  // bprof_switch runs, all threads of the machine
	cpuShare       float64 // bprof_switch time / the target's CPU time
	on, off        []float64
}

func buildPingpong() (string, error) {
	bin := filepath.Join(os.TempDir(), "bprof-pingpong")
	out, err := exec.Command("gcc", "-O2", "-pthread", "-o", bin, "testdata/native/pingpong.c").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gcc: %v: %s", err, out)
	}
	return bin, nil
}

// offcpuCost profiles the ping-pong workload with off-CPU tracing and reads
// the kernel's run time of the sched_switch program, then times the workload
// with and without off-CPU tracing in alternating, pinned runs.
func offcpuCost(d time.Duration, pairs int) (offcpuResult, error) {
	var res offcpuResult
	bin, err := buildPingpong()
	if err != nil {
		return res, err
	}
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		return res, fmt.Errorf("enable BPF stats: %w", err)
	}
	cmd := exec.Command("taskset", "-c", "1", bin, "100000000", fmt.Sprint(pingpongSpin))
	if err := cmd.Start(); err != nil {
		stats.Close()
		return res, err
	}
	s, err := profiler.NewSession(profiler.Options{OffCPU: true})
	if err != nil {
		cmd.Process.Kill()
		stats.Close()
		return res, err
	}
	cpu0 := processCPU(cmd.Process.Pid)
	s.Add(cmd.Process.Pid)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	s.Run(ctx)
	cancel()
	cpu := processCPU(cmd.Process.Pid) - cpu0
	ps, _ := s.ProgramStats()
	counters, _ := s.Stats()
	s.Close()
	stats.Close()
	cmd.Process.Kill()
	cmd.Wait()
	st := ps["bprof_switch"]
	res.runs = st.RunCount
	res.switchesPerSec = float64(counters.Switches) / d.Seconds()
	if counters.Switches > 0 {
		res.nsPerSwitch = float64(st.Runtime.Nanoseconds()) / float64(counters.Switches)
	}
	if cpu > 0 {
		res.cpuShare = st.Runtime.Seconds() / cpu.Seconds()
	}

	// Slowdown: bprof record with and without off-CPU, alternating, target on
	// CPU 1 and bprof on CPU 0.
	for i := 0; i < pairs; i++ {
		for _, offcpu := range []bool{true, false} {
			t, err := timedPingpong(bin, offcpu)
			if err != nil {
				return res, err
			}
			if offcpu {
				res.on = append(res.on, t)
			} else {
				res.off = append(res.off, t)
			}
		}
	}
	return res, nil
}

// timedPingpong runs 100,000 round trips under bprof record and returns the
// workload's own elapsed seconds.
func timedPingpong(bin string, offcpu bool) (float64, error) {
	w := exec.Command("taskset", "-c", "1", bin, "100000", fmt.Sprint(pingpongSpin), "500")
	var out bytes.Buffer
	w.Stdout = &out
	if err := w.Start(); err != nil {
		return 0, err
	}
	args := []string{"-c", "0", "bin/bprof", "record", "-p", fmt.Sprint(w.Process.Pid), "-o", filepath.Join(os.TempDir(), "bprof-pp.pb.gz")}
	if !offcpu {
		args = append(args, "--no-offcpu")
	}
	rec := exec.Command("taskset", args...)
	if err := rec.Start(); err != nil {
		w.Process.Kill()
		return 0, err
	}
	werr := w.Wait()
	rec.Wait()
	if werr != nil {
		return 0, fmt.Errorf("pingpong: %v", werr)
	}
	var secs, rate float64
	if _, err := fmt.Sscan(strings.TrimSpace(out.String()), &secs, &rate); err != nil {
		return 0, fmt.Errorf("pingpong said %q", out.String())
	}
	return secs, nil
}

// processCPU is the user+sys time of all threads of pid.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func spread(xs []float64) (lo, hi float64) {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0, 0
	}
	return s[0], s[len(s)-1]
}
