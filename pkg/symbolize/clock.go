package symbolize

import (
	"time"

	"golang.org/x/sys/unix"
)

// monoClock reads CLOCK_MONOTONIC, the clock of the samples' times, without
// a system call: unix.ClockGettime is a real one, where Go's own monotonic
// clock (the same CLOCK_MONOTONIC, through the vDSO) is not. A system call
// on the path that names samples wakes the Go runtime's monitor thread,
// which then polls every 20 µs for a millisecond.
type monoClock struct {
	base  uint64    // CLOCK_MONOTONIC at start, read before start
	start time.Time // carries Go's monotonic reading
}

func newMonoClock() monoClock {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail for this clock
	return monoClock{base: uint64(ts.Nano()), start: time.Now()}
}

// Now is CLOCK_MONOTONIC in nanoseconds, never later than the true time:
// base was read before start, so the estimate errs early by the gap.
func (c monoClock) Now() uint64 { return c.base + uint64(time.Since(c.start)) }
