package sampler

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ringWaker passes the ring buffer's wake-ups on, waiting for them in the Go
// runtime's own poller (the epoll it sleeps in anyway), not in an epoll_wait
// of its own: a goroutine blocked in a system call keeps the runtime's
// monitor thread polling. The BPF side wakes the ring for what cannot wait
// for the next poll: a request for user space, or 256 KiB of samples.
type ringWaker struct {
	f    *os.File
	done chan struct{}
}

// watchRing calls wake at each wake-up of the ring buffer map at fd, until
// Close.
func watchRing(fd int, wake func()) (*ringWaker, error) {
	// A descriptor of its own, non-blocking, so os.NewFile hands it to the
	// runtime's poller.
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("watch ring buffer: %w", err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("watch ring buffer: %w", err)
	}
	f := os.NewFile(uintptr(dup), "ring buffer")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("watch ring buffer: %w", err)
	}
	w := &ringWaker{f: f, done: make(chan struct{})}
	go w.run(rc, wake)
	return w, nil
}

func (w *ringWaker) run(rc syscall.RawConn, wake func()) {
	defer close(w.done)
	for {
		// The first call says "not ready", which parks the goroutine until
		// the poller sees the ring's next wake-up; the second ends the
		// wait. The poller is edge-triggered: a wake-up that came while
		// this goroutine was away is kept for it, none is missed.
		waited := false
		err := rc.Read(func(uintptr) bool {
			if waited {
				return true
			}
			waited = true
			return false
		})
		if err != nil {
			return // closed
		}
		wake()
	}
}

// Close stops passing wake-ups on.
func (w *ringWaker) Close() error {
	err := w.f.Close()
	<-w.done
	return err
}
