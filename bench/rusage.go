package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Go starts a child with vfork (CLONE_VM): at exec the kernel folds the
// shared memory's high-water mark, which is the bench's own, into the
// child's ru_maxrss. Every tool the bench started directly would then report
// at least the bench's RSS (36 MB late in a run) as its peak. GNU time forks
// an ordinary child, whose old memory at exec is time's own ~1 MB, and
// reports that child's ru_maxrss: so measured tools run under it.

// measured is a command started under GNU time.
type measured struct {
	cmd     *exec.Cmd
	rssFile string
	child   int // the measured command's PID: time's only child
}

// startMeasured starts argv under GNU time, pinned to cpu unless it is
// negative, and waits until time has started it. time writes its figures to
// a file in dir (the temp directory if ""), removed by usage or with dir.
func startMeasured(cpu int, argv []string, stdout, stderr io.Writer, dir string) (*measured, error) {
	f, err := os.CreateTemp(dir, "bprof-rusage-")
	if err != nil {
		return nil, err
	}
	f.Close()
	full := append([]string{"/usr/bin/time", "-q", "-f", "%M", "-o", f.Name()}, argv...)
	if cpu >= 0 {
		full = pinned(cpu, full)
	}
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	m := &measured{cmd: cmd, rssFile: f.Name()}
	deadline := time.Now().Add(5 * time.Second)
	for m.child == 0 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		if fs := strings.Fields(string(b)); len(fs) > 0 {
			m.child, _ = strconv.Atoi(fs[0])
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if m.child == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		os.Remove(f.Name())
		return nil, fmt.Errorf("%s did not start under /usr/bin/time (install the time package: bench/peers.sh)", argv[0])
	}
	return m, nil
}

// signal sends sig to the measured command (time itself ignores SIGINT).
func (m *measured) signal(sig os.Signal) error {
	p, err := os.FindProcess(m.child)
	if err != nil {
		return err
	}
	return p.Signal(sig)
}

// usage is the measured command's CPU time and peak RSS, once time exited:
// the CPU from time's own rusage, which holds its reaped child's (time's
// own share is a millisecond or so), the RSS from what time wrote.
func (m *measured) usage() (cpu time.Duration, maxRSS int64) {
	defer os.Remove(m.rssFile)
	if ru, ok := m.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, _ := os.ReadFile(m.rssFile)
	if kb, err := strconv.ParseInt(strings.TrimSpace(lastLine(string(b))), 10, 64); err == nil {
		maxRSS = kb * 1024
	}
	return cpu, maxRSS
}

// lastLine skips the "Command exited with non-zero status" line time may
// write before the figures.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
