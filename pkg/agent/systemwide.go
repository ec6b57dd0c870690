package agent

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/bprof/bprof/pkg/process"
)

// scanInterval is how often system-wide mode looks for new processes.
const scanInterval = time.Second

// seenProc is what the scan knows of a PID: the executable it was turned
// down with ("" once taken, noExe for a kernel thread) and the process's
// start time, which tells a reused PID.
type seenProc struct {
	exe   string
	start uint64
}

// noExe marks a known process with no executable: a kernel thread.
const noExe = "\x00"

// scan, in system-wide mode, registers every user-space process that appears
// (kernel threads have no executable) and passes Options.Filter, until stop
// is closed. Processes that exit are dropped by the period loop, as
// registered targets are. A process the filter turned down is looked at
// again when its executable changes: a shell script (pyenv's shims) execs
// into python after the scan may have seen it.
func (a *Agent) scan(stop <-chan struct{}) {
	self := os.Getpid()
	known := map[int]seenProc{}
	t := time.NewTicker(scanInterval)
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
			if looked && now == k.exe {
				continue // turned down as it is
			}
			if ok, why := a.opts.Filter.admit(pid); !ok {
				known[pid] = seenProc{exe: now, start: st}
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
