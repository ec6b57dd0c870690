package agent

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/bprof/bprof/pkg/process"
)

// scanInterval is how often system-wide mode looks for new processes.
const scanInterval = time.Second

// seenProc is what the scan knows of a PID.
type seenProc struct {
	kernel bool   // a kernel thread: no executable
	taken  bool   // registered
	start  uint64 // of a taken process, to tell a reused PID
	// stat is a taken process's /proc/PID/stat, held open: one pread a
	// scan tells it still runs. Opening and reading the file by path for
	// each of 54 processes every second was a fifth of an agent's CPU.
	stat *process.StatFile
	// Of a process turned down: what it was turned down as, when the scan
	// first saw it, and when to look at it again.
	exe         string
	cmdline     uint64
	first, next time.Time
}

// procList lists /proc, held open: no sort, no entry objects, no open a scan.
type procList struct {
	f *os.File
}

func (l *procList) list() ([]string, error) {
	if l.f == nil {
		f, err := os.Open("/proc")
		if err != nil {
			return nil, err
		}
		l.f = f
	} else if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		l.close()
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	names, err := l.f.Readdirnames(-1)
	if err != nil {
		l.close()
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	return names, nil
}

func (l *procList) close() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// stillRuns reports whether taken process pid is the one the scan took, or
// gone: false when its PID now belongs to another process.
func (k *seenProc) stillRuns(pid int) bool {
	if k.stat != nil {
		if st, err := k.stat.Read(); err == nil {
			return st.StartTime == k.start
		}
		// The held file no longer reads: the process it opened is gone,
		// and pid's directory is another process's, or its zombie's.
	}
	st, err := process.StartTime(pid)
	return err != nil || st == k.start
}

func (k *seenProc) close() {
	if k.stat != nil {
		k.stat.Close()
		k.stat = nil
	}
}

// recheckAfter is how long the scan waits before looking again at a
// process it turned down, by the process's age: every scan while it is
// young (a fork execs within moments), then less and less often, at most
// a minute apart, so that a host of long-lived processes costs a few reads
// a second rather than three per process.
func recheckAfter(age time.Duration) time.Duration {
	if age < 10*time.Second {
		return 0
	}
	return min(age/4, time.Minute)
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

// scan, in system-wide mode, registers every user-space process that appears
// (kernel threads have no executable) and passes Options.Filter, until stop
// is closed. Processes that exit are dropped by the period loop, as
// registered targets are. A process the filter turned down is looked at
// again when its executable or command line changed (recheckAfter says how
// often): it exec'd, as a forked python that execs python with other
// arguments, or a shell script (pyenv's shims) that execs into python. A
// taken PID whose process start time changed is a new process.
func (a *Agent) scan(stop <-chan struct{}) {
	self := os.Getpid()
	known := map[int]seenProc{}
	t := time.NewTicker(a.scanEvery)
	defer t.Stop()
	var procDir procList
	defer procDir.close()
	seen := map[int]bool{}
	for {
		clear(seen)
		names, err := procDir.list()
		if err != nil {
			a.log.Warn("system-wide scan", "err", err)
		}
		now := time.Now()
		for _, name := range names {
			pid, err := strconv.Atoi(name)
			if err != nil || pid == self {
				continue
			}
			seen[pid] = true
			k, looked := known[pid]
			switch {
			case !looked:
			case k.kernel:
				continue
			case k.taken:
				if k.stillRuns(pid) {
					continue // the same process (or gone)
				}
				k.close()
				delete(known, pid)
				looked = false // the PID was reused: a new process
			case now.Before(k.next):
				continue // turned down; not yet time to look again
			}
			exe, err := os.Readlink("/proc/" + name + "/exe")
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && process.Exists(pid) {
					known[pid] = seenProc{kernel: true}
				}
				continue // a kernel thread, or gone already
			}
			cmd := cmdlineHash(pid)
			first := now
			if looked {
				first = k.first
				if exe == k.exe && cmd == k.cmdline {
					k.next = now.Add(recheckAfter(now.Sub(first)))
					known[pid] = k
					continue // turned down as it is
				}
			}
			if ok, why := a.opts.Filter.admit(pid); !ok {
				known[pid] = seenProc{exe: exe, cmdline: cmd, first: first, next: now.Add(recheckAfter(now.Sub(first)))}
				a.log.Debug("system-wide: not profiled", "pid", pid, "exe", exe, "reason", why)
				continue
			}
			st, _ := process.StartTime(pid)
			stat, _ := process.OpenStat(pid)
			known[pid] = seenProc{taken: true, start: st, stat: stat}
			if err := a.Register(pid, Target{}); err != nil {
				a.log.Debug("system-wide: not profiled", "pid", pid, "err", err)
				continue
			}
			a.log.Info("system-wide: profiling", "pid", pid, "exe", exe)
		}
		for pid, k := range known {
			if !seen[pid] {
				k.close()
				delete(known, pid)
			}
		}
		select {
		case <-stop:
			for _, k := range known {
				k.close()
			}
			return
		case <-t.C:
		}
	}
}
