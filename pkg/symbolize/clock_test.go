package symbolize

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMonoClock: the clock without system calls reads CLOCK_MONOTONIC, never
// later than the true time and not far earlier.
func TestMonoClock(t *testing.T) {
	c := newMonoClock()
	for range 5 {
		var before, after unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &before)
		got := c.Now()
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &after)
		if got > uint64(after.Nano()) {
			t.Errorf("Now = %d, after CLOCK_MONOTONIC read just after it (%d)", got, after.Nano())
		}
		if uint64(before.Nano())-got > uint64(time.Millisecond) && got < uint64(before.Nano()) {
			t.Errorf("Now = %d, %v before CLOCK_MONOTONIC read just before it", got, time.Duration(uint64(before.Nano())-got))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
