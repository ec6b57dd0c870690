// Command bprof profiles running Python services with eBPF.
//
// Each subcommand lives in its own file (record.go, check.go, flamegraph.go, ...)
// and is reached through the table in commands below.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"

	"github.com/spf13/pflag"
)

// command is one subcommand: a name, a line of help and the function that runs it.
// run receives the arguments after the subcommand's name.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"record", "profile processes (-p PID) or a command (-- COMMAND): pprof, SVG, HTML, speedscope or folded", runRecord},
		{"top", "a live view of the functions a process spends its time in, refreshed every second", runTop},
		{"dump", "print every thread's stack once (Python, native, kernel) and whether it waits for the GIL", runDump},
		{"check", "report whether this machine can run bprof, and how to fix what is missing", runCheck},
		{"agent", "profile services continuously and ship batches to a directory or Pyroscope", runAgent},
		{"flamegraph", "render profiles (pprof, folded, agent batches) as SVG, HTML, folded or speedscope", runFlamegraph},
		{"version", "print the version", runVersion},
	}
}

// version is set at link time by the Makefile (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(mainWith(os.Args[1:], os.Stdout, os.Stderr))
}

func mainWith(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		if asksHelp(args[1:]) {
			// Help is the answer asked for: on standard output, so that
			// `bprof record --help | less` works.
			stderr = stdout
		}
		err := c.run(args[1:], stdout, stderr)
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		var es exitStatus
		if errors.As(err, &es) {
			return int(es)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bprof %s: %v\n", c.name, err)
			var ue usageError
			if errors.As(err, &ue) {
				return 2
			}
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "bprof: unknown command %q; run 'bprof --help' for the list\n", args[0])
	return 2
}

// asksHelp reports whether a command's arguments ask for its help (before
// any "--", after which they are the command's to run).
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help":
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "bprof: an eBPF profiler for Python services")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: bprof COMMAND [flags]   ('bprof COMMAND --help' for a command's flags)")
	fmt.Fprintln(w)
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
}

// usageError marks an error in the command line itself, so the exit status is 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitStatus ends bprof with this status and no message of its own: the
// status of the command `record -- COMMAND` ran, which said what it had to.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// newFlagSet returns a flag set that reports errors to the caller instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bprof %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		// pflag's slice flags pass on strconv's words ("strconv.Atoi:
		// parsing "abc": invalid syntax"); say it as its plain flags do.
		return usageError{errors.New(strconvWords.ReplaceAllString(err.Error(), "must be an integer"))}
	}
	return nil
}

var strconvWords = regexp.MustCompile(`strconv\.\w+: parsing "[^"]*": (invalid syntax|value out of range)`)

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "version\n\nExample:\n  bprof version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bprof %s\n", version)
	return nil
}
