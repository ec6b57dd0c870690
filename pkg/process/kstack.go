package process

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// KernelStack reads where thread tid of pid waits in the kernel, from
// /proc/PID/task/TID/stack (root only): function names, innermost first.
func KernelStack(pid, tid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stack", pid, tid))
	if err != nil {
		return nil, fmt.Errorf("read kernel stack of thread %d: %w", tid, err)
	}
	return ParseKernelStack(b)
}

// ParseKernelStack parses the /proc/PID/task/TID/stack format, one frame a
// line: "[<0>] do_nanosleep+0x6f/0x1a0". Offsets and modules are dropped.
func ParseKernelStack(b []byte) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		_, rest, ok := strings.Cut(line, "] ")
		if !ok || !strings.HasPrefix(line, "[<") {
			return names, &ParseError{File: "stack", Line: n, Msg: fmt.Sprintf("want \"[<addr>] symbol+off/len\", got %q", line)}
		}
		name, _, _ := strings.Cut(rest, "+")
		name, _, _ = strings.Cut(name, " ")
		if name == "" {
			return names, &ParseError{File: "stack", Line: n, Msg: "no symbol"}
		}
		names = append(names, name)
		if len(names) > 1024 {
			return names, &ParseError{File: "stack", Line: n, Msg: "more than 1024 frames"}
		}
	}
	return names, sc.Err()
}

// State is the one-letter scheduler state of thread tid ('R', 'S', 'D', ...).
func State(pid, tid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return 0, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return 0, err
	}
	return st.State, nil
}
