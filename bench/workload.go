package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// workload is a target process that prints "ready" once set up. The timed
// workloads then wait for a line on stdin before they start their work, so
// a profiler can attach first, and print one JSON line of their own
// accounting when done.
type workload struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// launch starts argv and waits until it prints "ready".
func launch(argv []string) (*workload, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", strings.Join(argv, " "), err)
	}
	w := &workload{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, _ := w.out.ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		w.stop()
		return nil, fmt.Errorf("%s said %q, not ready", strings.Join(argv, " "), line)
	}
	return w, nil
}

func (w *workload) pid() int { return w.cmd.Process.Pid }

// begin tells a timed workload to start its work.
func (w *workload) begin() error {
	_, err := io.WriteString(w.stdin, "go\n")
	return err
}

// result reads the workload's JSON line into v and waits for it to exit.
func (w *workload) result(v any) error {
	line, err := w.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read workload result: %w", err)
	}
	if err := json.Unmarshal([]byte(line), v); err != nil {
		return fmt.Errorf("workload result %q: %w", line, err)
	}
	return w.cmd.Wait()
}

// stop kills the workload if it still runs and reaps it.
func (w *workload) stop() {
	if w.cmd.ProcessState == nil {
		w.cmd.Process.Kill()
		w.cmd.Wait()
	}
}

// pinned runs argv on one CPU only.
func pinned(cpu int, argv []string) []string {
	return append([]string{"taskset", "-c", fmt.Sprint(cpu)}, argv...)
}

// CPUs the timed runs pin to: the target alone on one, the tool on the
// other, so the tool's own work does not take the target's CPU.
const (
	targetCPU = 1
	toolCPU   = 0
)

// errTimeout says a process did not exit in time and was killed.
var errTimeout = errors.New("did not exit in time: killed")

// waitExit waits up to limit for cmd to exit, then kills it and returns
// errTimeout.
func waitExit(cmd *exec.Cmd, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return errTimeout
	}
}
