package process

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// RunTime is the time thread tid has spent on a CPU, in nanoseconds: the
// first field of /proc/PID/task/TID/schedstat, the scheduler's own
// se.sum_exec_runtime.
func RunTime(pid, tid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
	if err != nil {
		return 0, err
	}
	return ParseSchedstat(b)
}

// ParseSchedstat reads the run time from the text of a schedstat file
// ("run_ns wait_ns timeslices").
func ParseSchedstat(b []byte) (uint64, error) {
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, &ParseError{File: "schedstat", Msg: "empty"}
	}
	v, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0, &ParseError{File: "schedstat", Msg: fmt.Sprintf("run time %q is not a number", f[0])}
	}
	return v, nil
}
