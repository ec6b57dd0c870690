package process

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
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
	// Fields after the comm start at field 3 (state). They are walked in
	// place: the agent and the target watch read a stat line per process
	// a second or more, and splitting it into strings was most of that.
	const state, ppid, numThreads, startTime, argStart = 3, 4, 20, 22, 48
	rest, field := b[closing+1:], 2
	for field < argStart {
		f, r := nextStatField(rest)
		if f == nil {
			break
		}
		rest = r
		field++
		switch field {
		case state:
			if len(f) != 1 {
				return st, &ParseError{File: "stat", Msg: fmt.Sprintf("bad state %q", f)}
			}
			st.State = f[0]
		case ppid:
			v, ok := parseDec(f)
			if !ok || v > math.MaxInt32 {
				return st, &ParseError{File: "stat", Msg: fmt.Sprintf("bad ppid %q", f)}
			}
			st.PPid = int(v)
		case numThreads:
			if v, ok := parseDec(f); ok && v <= math.MaxInt32 {
				st.Threads = int(v)
			}
		case startTime:
			v, ok := parseDec(f)
			if !ok {
				return st, &ParseError{File: "stat", Msg: fmt.Sprintf("bad start time %q", f)}
			}
			st.StartTime = v
		case argStart:
			// Optional: a line without it, or with something else there,
			// still gives the fields above (StartTime and Alive depend on them).
			st.ArgStart, _ = parseDec(f)
		}
	}
	if field < startTime {
		return st, &ParseError{File: "stat", Msg: fmt.Sprintf("want at least %d fields, have %d", startTime, field)}
	}
	return st, nil
}

// nextStatField splits the next space-separated field from s; nil when none
// is left.
func nextStatField(s []byte) (field, rest []byte) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t') {
		i++
	}
	j := i
	for j < len(s) && s[j] != ' ' && s[j] != '\n' && s[j] != '\t' {
		j++
	}
	if i == j {
		return nil, nil
	}
	return s[i:j], s[j:]
}

// parseDec parses an unsigned decimal number of at most 19 digits.
func parseDec(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
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
