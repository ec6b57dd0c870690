package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/bprof/bprof/pkg/container"
	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/python"
)

// Filter chooses which processes system-wide mode profiles. A process is
// taken when every set expression matches (unanchored, as grep does) and,
// unless AllProcesses, when it runs CPython.
type Filter struct {
	Comm    *regexp.Regexp // /proc/PID/comm, the 15-byte process name
	Cmdline *regexp.Regexp // /proc/PID/cmdline, arguments joined by spaces
	Cgroup  *regexp.Regexp // each path in /proc/PID/cgroup; one match is enough
	// AllProcesses takes processes that run no Python too (native and
	// kernel frames only). Off, a process is taken only if its executable
	// is a python3.X or it maps a libpython.
	AllProcesses bool
}

// admit says whether pid passes f, and if not, why (for a debug line).
func (f *Filter) admit(pid int) (ok bool, why string) {
	dir := fmt.Sprintf("/proc/%d/", pid)
	if f.Comm != nil {
		b, err := os.ReadFile(dir + "comm")
		if err != nil {
			return false, "gone"
		}
		if comm := strings.TrimSuffix(string(b), "\n"); !f.Comm.MatchString(comm) {
			return false, fmt.Sprintf("comm %q does not match --match-comm", comm)
		}
	}
	if f.Cmdline != nil {
		b, err := os.ReadFile(dir + "cmdline")
		if err != nil {
			return false, "gone"
		}
		cmd := string(bytes.TrimRight(bytes.ReplaceAll(b, []byte{0}, []byte{' '}), " "))
		if !f.Cmdline.MatchString(cmd) {
			return false, fmt.Sprintf("command line %.60q does not match --match-cmdline", cmd)
		}
	}
	if f.Cgroup != nil {
		b, err := os.ReadFile(dir + "cgroup")
		if err != nil {
			return false, "gone"
		}
		if !cgroupMatches(f.Cgroup, string(b)) {
			return false, "no cgroup path matches --match-cgroup"
		}
	}
	if !f.AllProcesses && !runsPython(pid) {
		return false, "runs no Python (no python3.X executable, no libpython)"
	}
	return true, ""
}

// cgroupMatches reports whether re matches the path of one line of a
// /proc/PID/cgroup file ("ID:CONTROLLERS:PATH"). A file that does not parse
// matches nothing.
func cgroupMatches(re *regexp.Regexp, file string) bool {
	cgs, err := container.ParseCgroups(strings.NewReader(file))
	if err != nil {
		return false
	}
	for _, c := range cgs {
		if re.MatchString(c.Path) {
			return true
		}
	}
	return false
}

// runsPython reports whether pid's executable is a CPython or it maps a
// libpython (an embedding server such as uWSGI).
func runsPython(pid int) bool {
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil &&
		python.IsInterpreterFile(strings.TrimSuffix(exe, " (deleted)")) {
		return true
	}
	maps, err := process.ReadMaps(pid)
	if err != nil {
		return false
	}
	for _, m := range maps {
		if strings.HasPrefix(filepath.Base(m.FilePath()), "libpython") && python.IsInterpreterFile(m.FilePath()) {
			return true
		}
	}
	return false
}
