// Command testsummary runs `go test -json` with the arguments it is given,
// prints what a plain `go test` prints (each package's closing line, and the
// output of failing tests), then names the tests that skipped and the one
// command that runs them all. `make test` runs it, so a developer sees at the
// end what the suite did not cover on their machine; CI runs it with
// BPROF_NO_SKIP=1, where a skip is a failure.
//
// Usage: go run ./internal/testsummary [go test flags] [packages]
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// $GO is the go command make uses (the Makefile passes it on), so the
	// suite runs with the toolchain that built this program.
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.Command(goCmd, append([]string{"test", "-json"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: %v\n", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: start go test: %v\n", err)
		return 2
	}
	w := bufio.NewWriter(os.Stdout)
	s := newSummary(w)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		s.line(sc.Bytes())
		w.Flush()
	}
	err = cmd.Wait()
	s.report()
	w.Flush()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode()
	case err != nil:
		fmt.Fprintf(os.Stderr, "testsummary: go test: %v\n", err)
		return 2
	}
	return 0
}
