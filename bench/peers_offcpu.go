package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"time"
)

// offcpuPeers runs bprof (with off-CPU) and Debian's offcputime against the
// ping-pong workload and divides each one's sched_switch program run time by
// the target's context switches; it adds them to m.
func offcpuPeers(m *peersResult, c *chroot, d time.Duration) error {
	pp, err := buildPingpong()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bprof-offcpu-peers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	stats, err := enableStats()
	if err != nil {
		return err
	}
	defer stats.Close()
	tools := toolset(c, tmp)
	bprof := tools["bprof CPU+wall"]
	bprof.progs = isSchedProgram
	m.offcpuCommand = map[string]string{}
	for _, t := range []tool{bprof, tools["offcputime"]} {
		m.offcpuCommand[t.name] = t.command()
		r, err := measureSwitches(t, pp, d, tmp)
		if err != nil {
			log.Printf("off-CPU peers: %s: %v", t.name, err)
			m.failed = append(m.failed, fmt.Sprintf("%s on the ping-pong workload: %v", t.name, err))
			continue
		}
		m.offcpu = append(m.offcpu, r)
		log.Printf("off-CPU peers: %-16s %.0f switches/s, %.0f ns per switch, %.1f MB",
			t.name, float64(r.switches)/d.Seconds(), r.nsPerSwitch(), float64(r.maxRSS)/1e6)
	}
	return nil
}

// measureSwitches is measurePeer for a switch-heavy native target.
func measureSwitches(t tool, pp pingpong, d time.Duration, tmp string) (peerResult, error) {
	res := peerResult{tool: t, window: d}
	w := pingpongCmd(pp)
	if err := w.Start(); err != nil {
		return res, err
	}
	defer func() { w.Process.Kill(); w.Wait() }()
	pid := w.Process.Pid
	time.Sleep(200 * time.Millisecond) // both threads started
	r, err := startTool(t, pid, tmp)
	if err != nil {
		return res, err
	}
	p0, s0, c0 := costOrLog(r.pid(), t), contextSwitches(pid), onCPU(r.pid())
	time.Sleep(d)
	p1, s1, c1 := costOrLog(r.pid(), t), contextSwitches(pid), onCPU(r.pid())
	res.prog, res.switches, res.windowCPU = p1.sub(p0), s1-s0, c1-c0
	if err := r.stop(); err != nil {
		log.Printf("off-CPU peers: %s: %v", t.name, err)
	}
	res.cpu, res.maxRSS = r.usage()
	return res, nil
}

// costOrLog is costOf for a tool whose programs are known to be loaded; a
// failure to read them is logged and counts as nothing.
func costOrLog(pid int, t tool) progCost {
	c, err := costOf(pid, t.progs)
	if err != nil {
		log.Printf("%s: %v", t.name, err)
	}
	return c
}

func (p peerResult) nsPerSwitch() float64 {
	if p.switches == 0 {
		return 0
	}
	return float64(p.prog.runtime.Nanoseconds()) / float64(p.switches)
}

// pingpongCmd runs the ping-pong workload for long enough, on the target's CPU.
func pingpongCmd(pp pingpong) *exec.Cmd {
	argv := pinned(targetCPU, []string{pp.bin, "100000000", fmt.Sprint(pp.spin)})
	return exec.Command(argv[0], argv[1:]...)
}
