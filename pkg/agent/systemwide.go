package agent

import (
	"os"
	"strconv"
	"time"
)

// scanInterval is how often system-wide mode looks for new processes.
const scanInterval = time.Second

// scan, in system-wide mode, registers every user-space process that appears
// (kernel threads have no executable), until stop is closed. Processes that
// exit are dropped by the period loop, as registered targets are.
func (a *Agent) scan(stop <-chan struct{}) {
	self := os.Getpid()
	known := map[int]bool{}
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
			if known[pid] {
				continue
			}
			known[pid] = true
			if _, err := os.Readlink("/proc/" + e.Name() + "/exe"); err != nil {
				continue // a kernel thread, or gone already
			}
			if err := a.Register(pid, Target{}); err != nil {
				a.log.Debug("system-wide: not profiled", "pid", pid, "err", err)
			}
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
