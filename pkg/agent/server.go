package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// server is the registration socket: a process connects, sends one JSON line
// per request and reads one JSON line per answer. It registers itself only,
// identified by SO_PEERCRED; while it stays registered the connection stays
// open, and closing it (or exiting) unregisters it.
type server struct {
	a  *Agent
	ln *net.UnixListener

	timeout time.Duration // for a request, while the connection is not registered

	mu      sync.Mutex
	conns   map[*net.UnixConn]bool
	closing bool
	wg      sync.WaitGroup
}

// replyTimeout bounds writing one answer: a client that never reads its
// answers must not hold its handler, nor Stop, for ever.
const replyTimeout = 5 * time.Second

// listen creates the socket at path (replacing a stale one), mode 0660 and
// owned by group when given, and serves it.
func listen(a *Agent, path, group string) (*server, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on %s: exists and is not a socket", path)
		}
		os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if group != "" {
		if err := chgrp(path, group); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen on %s: %w", path, err)
		}
	}
	s := &server{a: a, ln: ln, conns: map[*net.UnixConn]bool{}, timeout: a.opts.RequestTimeout}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func chgrp(path, group string) error {
	g, err := user.LookupGroup(group)
	if err != nil {
		return fmt.Errorf("look up group: %w", err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return fmt.Errorf("group %s: gid %q: %w", group, g.Gid, err)
	}
	return os.Chown(path, -1, gid)
}

func (s *server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.a.log.Error("registration socket stopped", "err", err)
			}
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

// close stops accepting, closes the connections (unregistering their
// processes, which ships their last batches) and waits for the handlers.
// The deadline wakes a handler blocked in a write to a client that does not
// read, which closing the read side would not.
func (s *server) close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.CloseRead()
		c.SetWriteDeadline(time.Now())
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// peerPID returns the PID of the process at the other end of c.
func peerPID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("read peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("read peer credentials: %w", err)
	}
	if credErr != nil {
		return 0, fmt.Errorf("read peer credentials: %w", credErr)
	}
	return int(cred.Pid), nil
}

func (s *server) serve(c *net.UnixConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	pid, err := peerPID(c)
	if err != nil {
		s.a.log.Warn("registration refused", "err", err)
		return
	}
	registered := false
	defer func() {
		if registered {
			if err := s.a.Unregister(pid); err != nil {
				s.a.log.Warn("unregister on disconnect", "pid", pid, "err", err)
			} else {
				s.a.log.Info("process unregistered", "pid", pid, "reason", "connection closed")
			}
		}
	}()
	r := bufio.NewReaderSize(c, 4096)
	// answer writes one reply; false means the client is not reading (or
	// the agent is stopping) and the connection is done.
	answer := func(rep reply) bool {
		s.mu.Lock() // close sets its deadline under mu: ours must not undo it
		closing := s.closing
		if !closing {
			c.SetWriteDeadline(time.Now().Add(replyTimeout))
		}
		s.mu.Unlock()
		return !closing && json.NewEncoder(c).Encode(rep) == nil
	}
	for {
		// A connection that is not registered must send a whole request in
		// time: a client that connects and says nothing, or half a line,
		// would otherwise hold a handler for ever. A registered one stays
		// quiet until it stops, by design.
		var deadline time.Time
		if !registered {
			deadline = time.Now().Add(s.timeout)
		}
		c.SetReadDeadline(deadline)
		line, err := readLine(r, maxMessage)
		if err != nil {
			switch {
			case errors.Is(err, errLineTooLong):
				s.a.log.Warn("registration request refused", "peer_pid", pid, "err", err)
				answer(reply{Error: err.Error() + ": closing the connection"})
			case errors.Is(err, os.ErrDeadlineExceeded) && !s.isClosing():
				msg := fmt.Sprintf("no complete request (one JSON line ending in a newline) within %s: closing the connection", s.timeout)
				s.a.log.Warn("registration connection timed out", "peer_pid", pid, "err", msg)
				answer(reply{Error: msg})
			}
			return
		}
		rep := reply{OK: true}
		if err := s.handle(pid, line, &registered, &rep); err != nil {
			s.a.log.Warn("registration request refused", "peer_pid", pid, "err", err)
			rep = reply{Error: err.Error()}
		}
		if !answer(rep) {
			return
		}
	}
}

func (s *server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *server) handle(pid int, line []byte, registered *bool, ans *reply) error {
	req, err := parseRequest(line)
	if err != nil {
		return err
	}
	if req.PID != 0 && req.PID != pid {
		return fmt.Errorf("pid %d: a process may register only itself (this connection is from pid %d)", req.PID, pid)
	}
	switch req.Op {
	case "start":
		if err := s.a.Register(pid, req.Target); err != nil {
			return err
		}
		*registered = true
		s.a.log.Info("process registered", "pid", pid, "application", req.Target.ApplicationName)
		if m := s.a.opts.Memory; m != nil {
			// Memory profiles: the client loads the sampler from here and
			// says so with {"op":"memory"}.
			if lib, err := m.Place(pid); err != nil {
				s.a.log.Warn("no memory profiles for this process", "pid", pid, "err", err)
				ans.MemoryError = err.Error()
			} else {
				ans.Memory = &memoryOffer{Library: lib}
			}
		}
	case "memory":
		if !*registered {
			return errors.New("memory: this process is not registered")
		}
		if s.a.opts.Memory == nil {
			return errors.New("memory: the agent does not record memory profiles (bprof agent --memory)")
		}
		if req.Error != "" {
			s.a.log.Warn("no memory profiles for this process: it could not load the sampler", "pid", pid, "err", req.Error)
			return nil
		}
		if err := s.a.Memory(pid); err != nil {
			return err
		}
		s.a.log.Info("memory profiles on", "pid", pid)
	case "stop":
		if !*registered {
			return errors.New("stop: this process is not registered")
		}
		*registered = false
		if err := s.a.Unregister(pid); err != nil {
			return err
		}
		s.a.log.Info("process unregistered", "pid", pid, "reason", "stop")
	}
	return nil
}

var errLineTooLong = fmt.Errorf("message longer than %d bytes", maxMessage)

// readLine reads one '\n'-terminated line of at most limit bytes.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return nil, errLineTooLong
		}
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if len(line) > 0 && errors.Is(err, io.EOF) {
				return line, nil
			}
			return nil, err
		}
	}
}
