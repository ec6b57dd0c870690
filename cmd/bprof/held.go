package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/bprof/bprof/pkg/profiler"
	"golang.org/x/sys/unix"
)

// `bprof record -- COMMAND` profiles COMMAND from its first instruction. It
// cannot start the command and then add it, as the command would run
// unprofiled meanwhile, and without ptrace it cannot start it stopped. So it
// starts a holder, a shell that waits on a pipe while bprof adds its PID as a
// target and then execs COMMAND in the same process. The exec is what the
// sampler's "new mappings" path already follows: the Python frames are
// attached as the interpreter loads.
//
// The holder is /bin/sh rather than bprof itself: a Go program has several
// threads, and those the exec ends would be counted as waiting (off-CPU)
// from the exec to the end of the recording. The shell has one thread, the
// one that becomes the command.

// holdScript waits for a line on fd 3 (EOF: bprof gave up, exit quietly),
// closes it and execs its arguments.
const holdScript = `read -r _ <&3 || exit 1; exec 3<&-; exec "$@"`

// heldCommand is a command started held, then released.
type heldCommand struct {
	cmd  *exec.Cmd
	name string
	hold *os.File // write end of the hold pipe
}

// lookCommand finds argv[0] as a shell would, so a mistyped command is one
// clear line before anything is loaded.
func lookCommand(argv []string) error {
	if _, err := exec.LookPath(argv[0]); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return usageError{fmt.Errorf("command %q not found: check its name and PATH", argv[0])}
		}
		return usageError{fmt.Errorf("command %q: %w", argv[0], err)}
	}
	return nil
}

// startHeld starts the holder for argv with the given standard streams.
// The caller must release or abort it.
func startHeld(argv []string, stdin io.Reader, stdout, stderr io.Writer) (*heldCommand, error) {
	holdR, holdW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	// The shell looks argv[0] up in PATH as lookCommand did, and the
	// command gets argv[0] as it was typed.
	cmd := exec.Command("/bin/sh", append([]string{"-c", holdScript, "bprof-hold"}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.ExtraFiles = []*os.File{holdR}
	err = cmd.Start()
	holdR.Close()
	if err != nil {
		holdW.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	return &heldCommand{cmd: cmd, name: argv[0], hold: holdW}, nil
}

func (h *heldCommand) pid() int { return h.cmd.Process.Pid }

// release lets the holder exec the command.
func (h *heldCommand) release() error {
	_, err := h.hold.Write([]byte("\n"))
	h.hold.Close()
	if err != nil {
		h.cmd.Wait()
		return fmt.Errorf("start %s: %w", h.name, err)
	}
	return nil
}

// abort ends a holder that was never released: it exits without running
// the command.
func (h *heldCommand) abort() {
	h.hold.Close()
	h.cmd.Wait()
}

// runningCommand is the command of `record -- COMMAND`, released and
// running as a target of the session.
type runningCommand struct {
	*heldCommand
	done  chan struct{} // closed when the command has exited (and was reaped)
	state *os.ProcessState
}

// startCommand starts argv held, adds it to sess, and lets it run.
func startCommand(sess *profiler.Session, argv []string, stdout, stderr io.Writer) (*runningCommand, error) {
	h, err := startHeld(argv, os.Stdin, stdout, stderr)
	if err != nil {
		return nil, err
	}
	if err := sess.Add(h.pid()); err != nil {
		h.abort()
		return nil, err
	}
	if err := h.release(); err != nil {
		return nil, err
	}
	rc := &runningCommand{heldCommand: h, done: make(chan struct{})}
	go func() {
		rc.cmd.Wait()
		rc.state = rc.cmd.ProcessState
		close(rc.done)
	}()
	return rc, nil
}

// wait returns when the command has exited.
func (rc *runningCommand) wait() { <-rc.done }

// finish waits for the command to end and returns bprof's exit status. A
// command still running when the recording ended for its duration is sent
// SIGTERM (and its end is no failure: bprof ended it); one that bprof was
// told to stop (stopped) got that signal already, and is waited for.
func (rc *runningCommand) finish(stopped bool, warn func(string)) int {
	select {
	case <-rc.done:
		return exitCode(rc.state)
	default:
	}
	if stopped {
		rc.wait()
		return exitCode(rc.state)
	}
	warn(fmt.Sprintf("the recording's duration is over: sending SIGTERM to %s (pid %d)", rc.name, rc.pid()))
	rc.cmd.Process.Signal(syscall.SIGTERM)
	rc.wait()
	return 0
}

// signals handles the signals bprof gets while it records: SIGINT and
// SIGTERM end the recording; with a command, those and the others in
// relayedSignals are passed on to it once it runs.
type signals struct {
	c       chan os.Signal
	quit    chan struct{}
	stopped atomic.Bool // SIGINT or SIGTERM came: set before the recording is cancelled
	child   atomic.Pointer[runningCommand]
}

// relayedSignals are passed on to a command.
var relayedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// catchSignals starts handling signals; cancel ends the recording.
func catchSignals(relay bool, cancel func()) *signals {
	s := &signals{c: make(chan os.Signal, 8), quit: make(chan struct{})}
	if relay {
		signal.Notify(s.c, relayedSignals...)
	} else {
		signal.Notify(s.c, syscall.SIGINT, syscall.SIGTERM)
	}
	go func() {
		for {
			select {
			case <-s.quit:
				return
			case sig := <-s.c:
				// A Ctrl-C or Ctrl-\ typed at a terminal has already reached
				// the command, which shares bprof's foreground process
				// group: those are not sent twice.
				if rc := s.child.Load(); rc != nil && (!(sig == syscall.SIGINT || sig == syscall.SIGQUIT) || !foregroundOfTerminal()) {
					rc.cmd.Process.Signal(sig)
				}
				if sig == syscall.SIGINT || sig == syscall.SIGTERM {
					s.stopped.Store(true)
					cancel()
				}
			}
		}
	}()
	return s
}

// relayTo passes signals on to rc from now on.
func (s *signals) relayTo(rc *runningCommand) { s.child.Store(rc) }

func (s *signals) stop() {
	signal.Stop(s.c)
	close(s.quit)
}

// foregroundOfTerminal reports whether bprof's process group is the
// foreground group of its controlling terminal: then the terminal sends
// keyboard signals to the whole group, the command included.
func foregroundOfTerminal() bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}

// exitCode is the status a shell would give for the command's end: its
// exit status, or 128 + the signal that killed it.
func exitCode(st *os.ProcessState) int {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}
