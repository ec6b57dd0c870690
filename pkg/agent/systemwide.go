package agent

import (
	"errors"
	"hash/fnv"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/bprof/bprof/pkg/process"
)

// scanInterval is how often system-wide mode looks for new processes.
const scanInterval = time.Second

// seenProc is what the scan knows of a PID: the executable and a hash of
// the command line it was turned down with ("" once taken, noExe for a
// kernel thread), and the process's start time, which tells a reused PID.
type seenProc struct {
	exe     string
	cmdline uint64
	start   uint64
}

// cmdlineHash hashes /proc/PID/cmdline, to notice an exec that keeps the
// executable; 0 when it cannot be read.
func cmdlineHash(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return 0
	}
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// noExe marks a known process with no executable: a kernel thread.
const noExe = "\x00"

// scan, in system-wide mode, registers every user-space process that appears
// (kernel threads have no executable) and passes Options.Filter, until stop
// is closed. Processes that exit are dropped by the period loop, as
// registered targets are. A process the filter turned down is looked at
// again when its executable or command line changes: it exec'd, as a
// forked python that execs python with other arguments, or a shell script
// (pyenv's shims) that execs into python, after the scan saw it.
func (a *Agent) scan(stop <-chan struct{}) {
	self := os.Getpid()
	known := map[int]seenProc{}
	t := time.NewTicker(a.scanEvery)
	defer t.Stop()
	for {
		seen := map[int]bool{}
		entries, err := os.ReadDir("/proc")
		if err != nil {
			a.log.Warn("system-wide scan", "err", err)
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == self {
				continue
			}
			seen[pid] = true
			k, looked := known[pid]
			st, err := process.StartTime(pid)
			if err != nil {
				continue // gone already
			}
			if looked && st != k.start {
				looked = false // the PID was reused: a new process
			}
			if looked && (k.exe == "" || k.exe == noExe) {
				continue // taken, or a kernel thread
			}
			now, err := os.Readlink("/proc/" + e.Name() + "/exe")
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && process.Exists(pid) {
					known[pid] = seenProc{exe: noExe, start: st}
				}
				continue // a kernel thread, or gone already
			}
			cmd := cmdlineHash(pid)
			if looked && now == k.exe && cmd == k.cmdline {
				continue // turned down as it is
			}
			if ok, why := a.opts.Filter.admit(pid); !ok {
				known[pid] = seenProc{exe: now, cmdline: cmd, start: st}
				a.log.Debug("system-wide: not profiled", "pid", pid, "exe", now, "reason", why)
				continue
			}
			known[pid] = seenProc{start: st}
			if err := a.Register(pid, Target{}); err != nil {
				a.log.Debug("system-wide: not profiled", "pid", pid, "err", err)
				continue
			}
			a.log.Info("system-wide: profiling", "pid", pid, "exe", now)
		}
		for pid := range known {
			if !seen[pid] {
				delete(known, pid)
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
