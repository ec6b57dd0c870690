package sampler

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// Config says what to sample and how often.
type Config struct {
	// Rate is the sampling frequency per CPU in Hz; 0 means 100. A busy thread
	// is sampled Rate times per second of its CPU time.
	Rate int
	// RingBytes is the ring buffer size, a power of two; 0 means
	// DefaultRingBytes for the machine's CPUs, four times that with Memory.
	RingBytes int
	// OffCPU also records the time target threads spend off the CPU, from
	// the scheduler's sched_switch tracepoint.
	OffCPU bool
	// UnwindRows is how many unwind-table rows (8 bytes each, kernel memory)
	// all loaded files may use together; 0 means DefaultUnwindRows.
	UnwindRows int
	// Memory loads the uprobe program of memory profiles (KindAlloc);
	// AttachAllocProbes attaches it to a target's sampler.
	Memory bool
}

// DefaultUnwindRows holds the tables of a Python process with its usual
// libraries (libpython ~100k rows, libc ~20k, libcrypto ~80k) many times
// over: 16 MiB of kernel memory.
const DefaultUnwindRows = 2 << 20

// DefaultRingBytes sizes the ring buffer for cpus CPUs: 128 KiB each, at
// least 512 KiB, at most 8 MiB, a power of two. Every busy CPU adds at most
// Rate samples a second of at most a few KiB; the BPF side wakes the reader
// once 256 KiB wait, so the smallest ring still holds as much again while
// the reader comes. Each byte of the ring counts twice in bprof's RSS once
// the ring has gone round (its pages are mapped twice), so it is not made
// larger than the machine needs.
func DefaultRingBytes(cpus int) int {
	n := 512 << 10
	for n < cpus*(128<<10) && n < 8<<20 {
		n *= 2
	}
	return n
}

// Read polls the ring buffer every pollMin while the samples bring news
// (Hurry), and backs off to pollMax, doubling, while they do not. Each poll
// wakes bprof, which was most of its steady CPU once samples were named
// from the memo; the ring does not wait for the poll to be read when it
// fills (the BPF side wakes the reader at 256 KiB, half the smallest ring),
// nor does a Flush, Close or a request of the BPF side.
const (
	pollMin = 20 * time.Millisecond
	pollMax = 640 * time.Millisecond
)

// ProgramPrefix starts the name of every BPF program bprof loads, so tests and
// operators can tell bprof's programs from others (bpftool prog list).
const ProgramPrefix = "bprof_"

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("sampler closed")

// ErrFlushed is returned by Read once it has returned every sample that was
// waiting when Flush was called.
var ErrFlushed = errors.New("sampler flushed")

// Sampler owns the loaded BPF objects, the perf events and the links between
// them. It is safe to call its target methods from one goroutine while another
// one calls Read.
type Sampler struct {
	cfg       Config
	objs      profileObjects
	cpu       *perfEvents
	sched     link.Link         // sched_switch, when recording off-CPU time
	periodMu  sync.Mutex        // guards epoch, oncpuSeen and forgotten
	epoch     uint64            // start of the current period (Monotonic), 0 before the first
	oncpuSeen map[uint32]uint64 // each thread's oncpu_ns at the last EndPeriod
	forgotten map[uint32]bool   // removed targets whose off-CPU state is still in the maps (forgetOffCPU)
	waitMu    sync.Mutex        // guards waitRaw
	waitRaw   []byte            // WaitStackInto's buffer
	reader    *ringbuf.Reader
	rec       ringbuf.Record
	wake      chan struct{} // ends Read's wait between polls early (Flush, Close)
	flushing  atomic.Bool   // Flush was called: Read must reach the reader's ErrFlushed
	ringMu    sync.Mutex    // orders Close's unmapping of the ring after a look at it
	closed    bool          // guarded by ringMu
	poll      *time.Timer   // Read's wait between polls
	interval  time.Duration // Read's current wait between polls
	hurry     atomic.Bool   // Hurry was called since Read last slept
	ringWake  *ringWaker    // the ring's own wake-ups, through the Go runtime's poller
	rowsMu    sync.Mutex
	rows      *rowAlloc // runs of unwind_rows in use; guarded by rowsMu
	memMu     sync.Mutex
	mem       map[int][]link.Link // uprobes on each target's allocation sampler; guarded by memMu
	targetsMu sync.Mutex
	targets   map[int]bool // the processes whose bits are set in the targets map; guarded by targetsMu
}

// New loads the BPF programs and starts sampling on every online CPU. Nothing
// is sampled until a target is added. The caller must Close the Sampler.
func New(cfg Config) (*Sampler, error) {
	if cfg.Rate == 0 {
		cfg.Rate = 100
	}
	if cfg.Rate < 1 || cfg.Rate > 10000 {
		return nil, fmt.Errorf("sampling rate %d Hz out of range: use 1 to 10000", cfg.Rate)
	}
	if cfg.RingBytes == 0 {
		cfg.RingBytes = DefaultRingBytes(runtime.NumCPU())
		if cfg.Memory {
			// Allocation samples come as fast as the target allocates,
			// not at a rate per CPU: tens of thousands a second at a
			// small sampling interval, where a 512 KiB ring lost 1 %.
			cfg.RingBytes *= 4
		}
	}
	if cfg.RingBytes < os.Getpagesize() || cfg.RingBytes&(cfg.RingBytes-1) != 0 {
		return nil, fmt.Errorf("ring buffer size %d: want a power of two of at least a page", cfg.RingBytes)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, privilegeError(fmt.Errorf("raise memlock limit: %w", err))
	}

	spec, err := loadProfile()
	if err != nil {
		return nil, fmt.Errorf("read embedded BPF object: %w", err)
	}
	spec.Maps["samples"].MaxEntries = uint32(cfg.RingBytes)
	if cfg.UnwindRows == 0 {
		cfg.UnwindRows = DefaultUnwindRows
	}
	if cfg.UnwindRows < 1 || cfg.UnwindRows > 1<<24 {
		return nil, fmt.Errorf("unwind table size %d rows out of range: use 1 to %d", cfg.UnwindRows, 1<<24)
	}
	spec.Maps["unwind_rows"].MaxEntries = uint32(cfg.UnwindRows)
	s := &Sampler{cfg: cfg, wake: make(chan struct{}, 1), oncpuSeen: map[uint32]uint64{}, forgotten: map[uint32]bool{}, rows: newRowAlloc(uint32(cfg.UnwindRows)), mem: map[int][]link.Link{}, targets: map[int]bool{}}
	if err := s.load(spec); err != nil {
		return nil, loadError(err)
	}
	s.reader, err = ringbuf.NewReader(s.objs.Samples)
	if err != nil {
		s.objs.Close()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	s.ringWake, err = watchRing(s.objs.Samples.FD(), s.wakeReader)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.cpu, err = openCPUClock(s.objs.BprofCpu, cfg.Rate)
	if err != nil {
		s.Close()
		return nil, err
	}
	if cfg.OffCPU {
		if err := s.startOffCPU(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Rate is the sampling frequency in Hz.
func (s *Sampler) Rate() int { return s.cfg.Rate }

// Read blocks until the next sample arrives and returns it, or ErrClosed once
// Close was called. Only one goroutine may call Read.
func (s *Sampler) Read() (Sample, error) {
	var smp Sample
	err := s.ReadInto(&smp)
	return smp, err
}

// ReadInto is Read into smp, whose stacks' arrays it reuses (DecodeInto).
func (s *Sampler) ReadInto(smp *Sample) error {
	for {
		// The ring is read without blocking, and between reads Read sleeps
		// on a Go timer, or until the ring's own wake-up (a request, 256 KiB
		// waiting) arrives through the Go runtime's poller (ringWaker). A
		// goroutine blocked in epoll_wait for the 20 ms of a poll holds its
		// thread, and the Go runtime's monitor, seeing it, polls every 20 µs
		// and more: 38 % of the agent's CPU over 54 processes went to those
		// wake-ups (perf, 2026-12-02). A look at the ring's positions is no
		// system call: with nothing waiting, Read sleeps without entering
		// the kernel at all.
		pending, err := s.pending()
		if err != nil {
			return err
		}
		if pending == 0 && !s.flushing.Load() {
			s.sleep()
			continue
		}
		s.reader.SetDeadline(time.Now())
		if err := s.reader.ReadInto(&s.rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// The reader keeps the end of its last wait and returns
				// it at the end of the records it found then, which may
				// be a wait ago: the look at the ring above decides
				// whether to sleep, and a Flush is not slept through.
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return ErrClosed
			}
			if errors.Is(err, ringbuf.ErrFlushed) {
				s.flushing.Store(false)
				return ErrFlushed
			}
			return fmt.Errorf("read ring buffer: %w", err)
		}
		return DecodeInto(s.rec.RawSample, smp)
	}
}

// sleep waits until the next poll, or less if the ring, Flush or Close
// wakes it. Each wait without a Hurry since the last doubles the next, up to
// pollMax.
func (s *Sampler) sleep() {
	s.interval = nextPoll(s.interval, s.hurry.Swap(false))
	if s.poll == nil {
		s.poll = time.NewTimer(s.interval)
	} else {
		s.poll.Reset(s.interval)
	}
	select {
	case <-s.poll.C:
	case <-s.wake:
		s.poll.Stop()
	}
}

// nextPoll is the wait after one of last, hurried or not.
func nextPoll(last time.Duration, hurried bool) time.Duration {
	if hurried || last == 0 {
		return pollMin
	}
	return min(2*last, pollMax)
}

// Hurry asks Read to poll again soon: the samples just read carried
// something that is best read from the target before it changes (a code
// object not seen before, or one whose check no longer held). A sample
// waits in the ring at most pollMin then, where it may wait pollMax while
// the samples bring nothing new.
func (s *Sampler) Hurry() { s.hurry.Store(true) }

// wakeReader ends a Read's wait between polls.
func (s *Sampler) wakeReader() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Flush wakes a waiting Read: Read returns what the ring buffer holds, then
// ErrFlushed. It is how to drain the samples already taken before Close.
func (s *Sampler) Flush() error {
	s.flushing.Store(true)
	err := s.reader.Flush()
	s.wakeReader()
	return err
}

// Pending returns the bytes waiting in the ring buffer.
func (s *Sampler) Pending() int {
	n, _ := s.pending()
	return n
}

// pending is Pending, or ErrClosed once Close unmapped the ring.
func (s *Sampler) pending() (int, error) {
	s.ringMu.Lock()
	defer s.ringMu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.reader.AvailableBytes(), nil
}

// Close detaches every program, closes the perf events and unloads the BPF
// objects. A Read in progress returns ErrClosed.
func (s *Sampler) Close() error {
	var errs []error
	if s.cpu != nil {
		errs = append(errs, s.cpu.Close())
		s.cpu = nil
	}
	if s.sched != nil {
		errs = append(errs, s.sched.Close())
		s.sched = nil
	}
	errs = append(errs, s.detachAllAllocProbes())
	if s.reader != nil {
		s.ringMu.Lock()
		s.closed = true
		s.ringMu.Unlock()
		if s.ringWake != nil {
			errs = append(errs, s.ringWake.Close())
		}
		errs = append(errs, s.reader.Close())
		s.wakeReader()
	}
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}

// privilegeError turns a permission failure into the one-line advice a user needs.
func privilegeError(err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w: bprof needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE); run it with sudo", err)
	}
	return err
}

// loadError names the program the kernel refused and the verifier's last words.
func loadError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		log := ve.Log
		if len(log) > 3 {
			log = log[len(log)-3:]
		}
		return fmt.Errorf("load BPF objects: the kernel refused them: %v (verifier: %s)", err, strings.Join(log, " | "))
	}
	return fmt.Errorf("load BPF objects: %w", privilegeError(err))
}
