package process

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Threads returns the thread IDs of process pid, sorted, from
// /proc/PID/task.
func Threads(pid int) ([]int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	slices.Sort(tids)
	return tids, nil
}

// Comm returns the name of thread tid of process pid, from
// /proc/PID/task/TID/comm.
func Comm(pid, tid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/comm", pid, tid))
	if err != nil {
		return "", fmt.Errorf("read thread name: %w", err)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// Status is what bprof reads from /proc/PID/status.
type Status struct {
	Name   string
	Tgid   int   // the process (thread group) ID
	Pid    int   // the thread ID
	PPid   int   // the parent's process ID
	NSpid  []int // the thread ID in each PID namespace, outermost first
	NStgid []int // the process ID in each PID namespace, outermost first
}

// TaskStatus reads and parses /proc/PID/task/TID/status.
func TaskStatus(pid, tid int) (Status, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	defer f.Close()
	st, err := ParseStatus(f)
	if err != nil {
		return Status{}, fmt.Errorf("read status of %d/%d: %w", pid, tid, err)
	}
	return st, nil
}

// ParseStatus parses the /proc/PID/status format ("Key:\tvalue" lines).
// Fields bprof does not use are skipped; a missing Tgid is an error.
func ParseStatus(r io.Reader) (Status, error) {
	var st Status
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line, haveTgid := 0, false
	for sc.Scan() {
		line++
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Name":
			st.Name = unescapeName(val)
		case "Tgid":
			st.Tgid, err = strconv.Atoi(val)
			haveTgid = err == nil
		case "Pid":
			st.Pid, err = strconv.Atoi(val)
		case "PPid":
			st.PPid, err = strconv.Atoi(val)
		case "NSpid":
			st.NSpid, err = parseInts(val)
		case "NStgid":
			st.NStgid, err = parseInts(val)
		default:
			continue
		}
		if err != nil {
			return Status{}, &ParseError{File: "status", Line: line, Msg: fmt.Sprintf("bad %s %q", key, val)}
		}
	}
	if err := sc.Err(); err != nil {
		return Status{}, fmt.Errorf("parse status: %w", err)
	}
	if !haveTgid {
		return Status{}, &ParseError{File: "status", Msg: "no Tgid"}
	}
	return st, nil
}

func parseInts(s string) ([]int, error) {
	fs := strings.Fields(s)
	out := make([]int, 0, len(fs))
	for _, f := range fs {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// unescapeName undoes the kernel's escaping of the Name field, which
// writes a newline as `\n` and a backslash as `\\`.
func unescapeName(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(s)
}

// Stat is what bprof reads from /proc/PID/stat.
type Stat struct {
	Pid       int
	Comm      string
	State     byte
	PPid      int
	StartTime uint64 // clock ticks after boot (field 22)
	Threads   int    // threads in the process (field 20); 0 if the line lacks it
	// ArgStart is where the command line starts in the process's memory
	// (field 48; 0 when the kernel hid it or the line is older). The stack
	// is placed at random at each exec, so a new value means the process
	// exec'd, even into the same file.
	ArgStart uint64
}

// ParseStat parses the one line of /proc/PID/stat. The command name is in
// parentheses and may itself contain spaces and parentheses, so it runs to
// the last ')'.
func ParseStat(b []byte) (Stat, error) {
	var st Stat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return st, &ParseError{File: "stat", Msg: "no (comm)"}
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return st, &ParseError{File: "stat", Msg: fmt.Sprintf("bad pid %q", bytes.TrimSpace(b[:open]))}
	}
	st.Pid = pid
	st.Comm = string(b[open+1 : closing])
	// Fields after the comm start at field 3 (state).
	fields := strings.Fields(string(b[closing+1:]))
	const first, startTime = 3, 22
	if len(fields) < startTime-first+1 {
		return st, &ParseError{File: "stat", Msg: fmt.Sprintf("want at least %d fields, have %d", startTime, len(fields)+first-1)}
	}
	if len(fields[0]) != 1 {
		return st, &ParseError{File: "stat", Msg: fmt.Sprintf("bad state %q", fields[0])}
	}
	st.State = fields[0][0]
	if st.PPid, err = strconv.Atoi(fields[4-first]); err != nil {
		return st, &ParseError{File: "stat", Msg: fmt.Sprintf("bad ppid %q", fields[4-first])}
	}
	if st.StartTime, err = strconv.ParseUint(fields[startTime-first], 10, 64); err != nil {
		return st, &ParseError{File: "stat", Msg: fmt.Sprintf("bad start time %q", fields[startTime-first])}
	}
	const numThreads = 20
	st.Threads, _ = strconv.Atoi(fields[numThreads-first])
	// Optional: a line without it, or with something else there, still
	// gives the fields above (StartTime and Alive depend on them).
	const argStart = 48
	if len(fields) > argStart-first {
		st.ArgStart, _ = strconv.ParseUint(fields[argStart-first], 10, 64)
	}
	return st, nil
}

// StartTime returns when process pid started, in clock ticks after boot
// (field 22 of /proc/PID/stat). A PID with another start time than before
// was reused by a new process.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read start time: %w", err)
	}
	st, err := ParseStat(b)
	if err != nil {
		return 0, fmt.Errorf("read start time of pid %d: %w", pid, err)
	}
	return st.StartTime, nil
}

// ReadStat reads and parses /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, fmt.Errorf("read stat: %w", err)
	}
	st, err := ParseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return st, nil
}

// Exists reports whether process pid exists in the reader's PID
// namespace (zombies included).
func Exists(pid int) bool {
	if pid <= 0 {
		return false
	}
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil || !errors.Is(err, os.ErrNotExist)
}
