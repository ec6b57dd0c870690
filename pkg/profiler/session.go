package profiler

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/memory"
	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/sampler"
	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/cilium/ebpf"
	"github.com/google/pprof/profile"
)

// Options configure a Session.
type Options struct {
	Rate int // Hz; 0 means 100
	// OffCPU adds wall time: the time threads spend off the CPU (blocked or
	// waiting for a CPU), from the scheduler, in a wall/nanoseconds type.
	OffCPU bool
	// Warn receives one-line warnings (an unsupported Python, a target that
	// exited). Nil discards them.
	Warn func(msg string)
	// Exited is told of each target that exits, and how long after it was
	// added. Nil warns (Warn): for a command profiling one process its
	// exit is news, for a host agent taking every process it is routine.
	Exited func(pid int, after time.Duration)
	// FramePointers walks native stacks by frame pointers only, without the
	// unwind tables built from each file's .eh_frame: cheaper, and wrong
	// below the first frame in code built without frame pointers.
	FramePointers bool
	// Memory adds the memory sample types (alloc_objects, alloc_space,
	// inuse_objects, inuse_space) for targets given to AttachMemory.
	Memory bool
	// AllocSampleBytes is the mean number of bytes between two sampled
	// allocations; 0 means memory.DefaultSampleBytes (512 KiB).
	AllocSampleBytes int
}

// Session is one running profiler over a set of target processes.
type Session struct {
	opts    Options
	sampler *sampler.Sampler
	cache   *process.Cache
	native  *symbolize.Native
	kernel  *symbolize.Kernel
	python  *symbolize.Python
	unwind  *unwinder // nil with Options.FramePointers

	mu       sync.Mutex
	builder  *export.Builder
	start    time.Time
	targets  map[int]*target
	threads  map[int]bool // TIDs seen since the session started
	sampling bool         // a target was added: start is when sampling began
	counts   Counts

	frames      []symbolize.Frame
	spare       []symbolize.Frame // symbolize's second frame buffer
	addrs       []uint64
	memo        *stackMemo                // on-CPU stacks named before (readLoop's)
	smp         sampler.Sample            // the sample readLoop handles
	cuts        atomic.Uint64             // Cuts so far: the memo's Stacks are of the Builder of the last
	blocked     map[int]*blockedThread    // by TID: off the CPU when their process was added
	names       map[threadKey]threadName  // thread names (names.go)
	gone        map[threadKey]uint64      // threads found exited, with the period they were found in (names.go)
	period      uint64                    // how many Cuts ended a period
	prunedAt    uint64                    // the period whose first watch look pruned names (names.go)
	periodMu    sync.Mutex                // one endPeriod at a time; guards waits
	waits       map[waitKey]*waitStack    // wait sites' stacks, named
	waitPeriod  uint64                    // periods ended, for dropIdleWaits; guarded by periodMu
	waitScratch waitScratch               // guarded by periodMu
	late        map[threadKey]*lateThread // new threads' blocked Python stacks (late.go)
	stopped     time.Time                 // when Run stopped sampling: the end of the last profile

	mem        map[int]*memTarget // targets with memory profiles on, by PID
	heap       *memory.Heap       // their sampled blocks still live; nil without Options.Memory
	memCounts  MemoryCounts
	memGone    MemoryCounts // Sampled, Frees and Untracked of the samplers detached
	memRemoved map[int]bool // detached since the last Cut: their blocks go after it

	flushMu  sync.Mutex    // one flush at a time: Cut's or the end of Run's
	flushed  chan struct{} // the reader got to the end of a Cut's flush
	running  atomic.Bool
	stopping atomic.Bool
}

// Counts are what a Session has seen since it started.
type Counts struct {
	Samples int64 // samples added to profiles
	Threads int   // distinct threads sampled
	Decode  int64 // records that could not be decoded
}

type target struct {
	pid       int
	startTime uint64 // /proc/PID/stat start time, to tell a reused PID
	exited    bool
	added     time.Time
	threads   int               // its thread count at the watch's last look (/proc/PID/stat)
	listed    int               // its thread count when its threads were last listed (retryNames)
	stat      *process.StatFile // held open for the watch; nil if it could not be opened
}

// readStat reads the target's /proc/PID/stat, through the file held open
// when there is one.
func (t *target) readStat() (process.Stat, error) {
	if t.stat != nil {
		return t.stat.Read()
	}
	return process.ReadStat(t.pid)
}

// close closes what the target holds open.
func (t *target) close() {
	if t.stat != nil {
		t.stat.Close()
		t.stat = nil
	}
}

// NewSession loads the BPF programs and readies the symbolizers. The caller
// must Close it.
func NewSession(opts Options) (*Session, error) {
	if opts.Rate == 0 {
		opts.Rate = 100
	}
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	if opts.Exited == nil {
		warn := opts.Warn
		opts.Exited = func(pid int, after time.Duration) {
			warn(fmt.Sprintf("target %d exited after %s; its samples so far are kept", pid, after.Round(100*time.Millisecond)))
		}
	}
	if opts.AllocSampleBytes == 0 {
		opts.AllocSampleBytes = memory.DefaultSampleBytes
	}
	if opts.AllocSampleBytes < 1 {
		return nil, fmt.Errorf("allocation sample size %d bytes: must be positive", opts.AllocSampleBytes)
	}
	kernel, err := symbolize.NewKernel()
	if err != nil {
		return nil, err
	}
	smp, err := sampler.New(sampler.Config{Rate: opts.Rate, OffCPU: opts.OffCPU, Memory: opts.Memory})
	if err != nil {
		return nil, err
	}
	cache := process.NewCache()
	native := symbolize.NewNative(cache)
	s := &Session{
		opts:    opts,
		sampler: smp,
		cache:   cache,
		native:  native,
		kernel:  kernel,
		python:  symbolize.NewPython(native),
		targets: map[int]*target{},
		threads: map[int]bool{},
		flushed: make(chan struct{}, 1),
		blocked: map[int]*blockedThread{},
		names:   map[threadKey]threadName{},
		gone:    map[threadKey]uint64{},
		waits:   map[waitKey]*waitStack{},
		late:    map[threadKey]*lateThread{},
		memo:    newStackMemo(),
	}
	s.mem, s.memRemoved = map[int]*memTarget{}, map[int]bool{}
	if opts.Memory {
		s.heap = memory.NewHeap()
	}
	if !opts.FramePointers {
		s.unwind = newUnwinder(smp, cache, opts.Warn)
		s.unwind.onRefresh = s.reattachPython
	}
	s.builder = s.newBuilder()
	s.start = time.Now()
	// Loading BPF leaves ~10 MB of garbage (the kernel's BTF), several
	// times what stays: collect it now, so that Add's tables are made in
	// its pages rather than in new ones. Not FreeOSMemory: pages given
	// back here were faulted in again by Add, at a few µs each in a VM;
	// the caller gives the heap back once start-up is over.
	runtime.GC()
	return s, nil
}

func (s *Session) newBuilder() *export.Builder {
	return export.NewBuilder(export.Options{Rate: s.opts.Rate, Wall: s.opts.OffCPU, Memory: s.opts.Memory})
}

// Add starts profiling process pid. A CPython process gets its Python frames
// walked; any other process, or an unsupported Python (warned about once),
// still gets native and kernel frames.
func (s *Session) Add(pid int) error {
	if !process.Exists(pid) {
		return fmt.Errorf("no process with PID %d: check the PID (ps -p %d)", pid, pid)
	}
	st, err := process.StartTime(pid)
	if err != nil {
		return fmt.Errorf("add target %d: %w", pid, err)
	}
	tg := &target{pid: pid, startTime: st, added: time.Now()}
	tg.stat, _ = process.OpenStat(pid) // without it, the watch opens the file each time
	s.mu.Lock()
	if old := s.targets[pid]; old != nil {
		old.close()
	}
	s.targets[pid] = tg
	s.mu.Unlock()
	if err := s.attachPython(pid); err != nil {
		s.opts.Warn(err.Error())
	}
	if s.opts.OffCPU {
		s.snapshotBlocked(pid)
	}
	if s.unwind != nil {
		// Before sampling starts, so that no sample of pid is walked by
		// frame pointers for want of a table that is being built.
		if err := s.unwind.load(pid); err != nil {
			s.opts.Warn(fmt.Sprintf("process %d: native stacks by frame pointers only: %v", pid, err))
		}
	}
	var threads []sampler.ThreadAtAdd
	if s.opts.OffCPU {
		threads = threadsAtAdd(pid)
	}
	// The profile's span starts when sampling does, not when the programs
	// loaded: Add reads symbols and builds unwind tables first. The kernel's
	// first period starts at the same instant.
	now, wall := clock()
	s.mu.Lock()
	first := !s.sampling
	if first {
		s.sampling = true
		s.start = wall
	}
	s.mu.Unlock()
	if first {
		if err := s.sampler.BeginPeriod(now); err != nil {
			return err
		}
	}
	// pid's threads count from now: blocked ones wait from now, the others
	// run. Their entries exist before the kernel sees pid, so from its first
	// switch on, every instant of a thread is either a wait or a run; a
	// switch between the two calls only moves time between the two.
	if err := s.sampler.StartThreads(pid, threads, now); err != nil {
		return err
	}
	return s.sampler.AddTarget(pid)
}

// attachPython tells the sampler how to walk pid's Python stacks, if it runs
// a CPython that bprof knows.
func (s *Session) attachPython(pid int) error {
	in, threads, err := s.python.Attach(pid)
	if err != nil || in == nil {
		return err
	}
	layout, err := sampler.LayoutFor(in.Offsets)
	if err != nil {
		return fmt.Errorf("process %d runs Python %s: %w", pid, in.Version, err)
	}
	if err := s.sampler.SetPython(pid, layout); err != nil {
		return err
	}
	return s.sampler.SetPythonThreads(pid, threads)
}

// reattachPython attaches to pid's CPython if it was not one when added:
// a process started through a shell script (pyenv's shims) is bash for its
// first few milliseconds, then execs python.
func (s *Session) reattachPython(pid int) {
	s.mu.Lock()
	_, ok := s.targets[pid]
	s.mu.Unlock()
	if !ok || s.python.Attached(pid) {
		return
	}
	if err := s.attachPython(pid); err != nil {
		s.opts.Warn(err.Error())
	}
}

func (s *Session) refreshThreads(pid int) {
	threads, err := s.python.Threads(pid)
	if err != nil {
		return // the process may be exiting; samples keep their native frames
	}
	s.sampler.SetPythonThreads(pid, threads)
	s.noteThreads(pid)
}

// Remove stops profiling pid.
func (s *Session) Remove(pid int) error {
	s.mu.Lock()
	if tg := s.targets[pid]; tg != nil {
		tg.close()
	}
	delete(s.targets, pid)
	s.mu.Unlock()
	s.forgetThreads(pid)
	s.forgetWaits(pid)
	s.detachMemory(pid)
	s.python.Forget(pid)
	s.native.Forget(pid)
	err := s.sampler.RemoveTarget(pid)
	if s.unwind != nil {
		s.unwind.forget(pid) // after the kernel let go of its mappings: its tables may be reused
	}
	return err
}

// Run reads and adds samples until ctx is done or every target has exited,
// then drains what the kernel still holds. It returns nil in both cases.
func (s *Session) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.watchTargets(ctx, cancel)
	if s.unwind != nil {
		go s.unwind.run(ctx.Done())
	}

	errc := make(chan error, 1)
	s.stopping.Store(false)
	s.running.Store(true)
	defer s.running.Store(false)
	go func() { errc <- s.readLoop() }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	// Stop new samples, then take what is already in the ring buffer, then
	// close the waits still open (before the targets' state is dropped).
	s.mu.Lock()
	var pids []int
	for pid := range s.targets {
		pids = append(pids, pid)
	}
	s.mu.Unlock()
	s.stopMemory(pids)
	now, wall := clock()
	s.sampler.StopTargets(pids)
	defer func() {
		// The last period ends where sampling stopped; Cut gives it that end.
		s.endPeriod(now)
		s.mu.Lock()
		s.stopped = wall
		s.mu.Unlock()
		for _, pid := range pids {
			s.sampler.RemoveTarget(pid)
		}
	}()
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.stopping.Store(true)
	if err := s.sampler.Flush(); err != nil {
		return fmt.Errorf("drain samples: %w", err)
	}
	err := <-errc
	if errors.Is(err, sampler.ErrClosed) {
		return nil
	}
	return err
}

// readLoop handles samples until the sampler closes, or until the flush that
// ends a Run. A flush asked for by Cut is acknowledged on s.flushed.
func (s *Session) readLoop() error {
	reads := s.python.CodeReads()
	for {
		// While the samples bring code objects not seen before, the
		// sampler polls at its quickest: they are best read before the
		// target frees them.
		if n := s.python.CodeReads(); n != reads {
			reads = n
			s.sampler.Hurry()
		}
		err := s.sampler.ReadInto(&s.smp)
		if errors.Is(err, sampler.ErrFlushed) {
			if s.stopping.Load() {
				return nil
			}
			select {
			case s.flushed <- struct{}{}:
			default:
			}
			continue
		}
		if err != nil {
			return err
		}
		s.handle(&s.smp)
	}
}

func (s *Session) handle(smp *sampler.Sample) {
	switch smp.Kind {
	case sampler.KindNeedThreads:
		s.refreshThreads(smp.PID)
		return
	case sampler.KindNeedMaps:
		if s.unwind != nil {
			s.unwind.requestRefresh(smp.PID)
		}
		return
	case sampler.KindCPU:
		s.addCPU(smp)
	case sampler.KindAlloc:
		if s.heap == nil {
			return
		}
		s.trimSampler(smp)
		frames := s.symbolize(smp)
		s.mu.Lock()
		s.addAlloc(smp, frames)
		s.mu.Unlock()
	}
}

// addCPU adds an on-CPU sample, naming its stack unless the memo has it.
func (s *Session) addCPU(smp *sampler.Sample) {
	e := s.memo.find(smp, memoGen{s.native.Changes(), s.python.Changes(), s.cuts.Load()})
	if e != nil && smp.Flags&sampler.FlagPyTarget != 0 && !s.python.StillHeld(smp.PID, smp.Python, smp.Time) {
		e = nil
	}
	var frames []symbolize.Frame
	if e == nil {
		// Named outside s.mu, which naming's reads of the target would
		// hold up.
		frames = s.symbolize(smp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if frames == nil && !s.builder.Holds(e.stack) {
		frames = s.symbolize(smp) // a Cut came in since find
	}
	var st *export.Stack
	switch {
	case frames == nil:
		st = e.stack
	case e != nil:
		st = s.builder.Stack(frames)
		if memoizable(frames) {
			e.stack = st
		}
	default:
		st = s.builder.Stack(frames)
		if memoizable(frames) {
			s.memo.put(st)
		}
	}
	s.builder.AddCPUStack(st, export.Labels{PID: smp.PID, TID: smp.TID, ThreadName: s.threadName(smp.PID, smp.TID, smp.Comm)}, 1)
	s.counts.Samples++
	if !s.threads[smp.TID] {
		s.threads[smp.TID] = true
		s.counts.Threads++
	}
}

// symbolize names a sample's frames, leaf first: kernel, then native frames
// down to the interpreter, then the Python frames (docs/ARCHITECTURE.md).
func (s *Session) symbolize(smp *sampler.Sample) []symbolize.Frame {
	s.frames = s.symbolizeInto(smp, s.frames[:0], &s.addrs, &s.spare)
	return s.frames
}

// symbolizeInto is symbolize with the caller's buffers; spare is a second
// frame buffer the Python frames may be interleaved into, and gets the one
// the result does not use (nil: a new one is allocated).
func (s *Session) symbolizeInto(smp *sampler.Sample, f []symbolize.Frame, addrs *[]uint64, spare *[]symbolize.Frame) []symbolize.Frame {
	f = s.kernel.Symbolize(smp.Kernel, f)
	if smp.Flags&sampler.FlagKernelStackErr != 0 {
		f = append(f, export.Pseudo("[kernel stack unreadable]"))
	}
	nat := len(f)
	f = s.nativeFrames(smp, f, addrs)
	if smp.Flags&sampler.FlagPyTarget != 0 {
		flags := pyFlags(smp.Flags)
		flags.SampledAt = smp.Time
		var out []symbolize.Frame
		if spare != nil {
			out = (*spare)[:0]
		}
		in := f
		f = s.python.Interleave(smp.PID, f, nat, smp.Python, flags, out)
		if spare != nil && !sameArray(f, in) {
			*spare = in[:0]
		}
	}
	if len(f) == 0 {
		f = append(f, export.Pseudo("[no stack]"))
	}
	return f
}

// sameArray reports whether a and b start in the same array.
func sameArray(a, b []symbolize.Frame) bool {
	return cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0]
}

func pyFlags(f sampler.Flags) symbolize.PyFlags {
	return symbolize.PyFlags{
		Truncated:      f&sampler.FlagPyTruncated != 0,
		ReadError:      f&sampler.FlagPyReadErr != 0,
		UnknownThread:  f&sampler.FlagPyUnknownThread != 0,
		NativeUnwound:  f&sampler.FlagUserTables != 0,
		NativeComplete: f&sampler.FlagUserComplete != 0,
	}
}

// fpMarker stands where a native walk went on by frame pointers: the frames
// root-ward of it may be wrong in code built without them.
var fpMarker = export.Pseudo("[frame pointers]")

// nativeFrames names the user stack, with fpMarker before the first frame
// found by frame pointers rather than by an unwind table.
func (s *Session) nativeFrames(smp *sampler.Sample, dst []symbolize.Frame, buf *[]uint64) []symbolize.Frame {
	addrs := (*buf)[:0]
	fpFrom := -1
	for i, w := range smp.User {
		if w&sampler.FrameByFP != 0 && fpFrom < 0 {
			fpFrom = i
		}
		addrs = append(addrs, sampler.FrameAddr(w))
	}
	*buf = addrs
	if smp.Flags&sampler.FlagUserTables == 0 && len(addrs) > 1 {
		fpFrom = 1 // no tables for this process (yet): all by frame pointers
	}
	if fpFrom < 0 {
		return s.native.Symbolize(smp.PID, addrs, dst)
	}
	dst = s.native.Symbolize(smp.PID, addrs[:fpFrom], dst)
	dst = append(dst, fpMarker)
	return s.native.SymbolizeFrom(smp.PID, addrs[fpFrom:], fpFrom, dst)
}

// Cut ends the current profile and starts the next: every sample is in
// exactly one of them. While Run is reading, Cut first waits (at most a
// second) until every sample the kernel took before the call is in.
func (s *Session) Cut() (p *profile.Profile, start, end time.Time) {
	s.flushMu.Lock()
	if s.running.Load() && !s.stopping.Load() && s.sampler.Flush() == nil {
		select {
		case <-s.flushed:
		case <-time.After(time.Second):
		}
	}
	s.flushMu.Unlock()
	s.syncHeap()
	s.mu.Lock()
	end = s.stopped
	s.stopped = time.Time{}
	s.mu.Unlock()
	if end.IsZero() {
		// The period ends now, for the kernel's wait times as for the profile.
		var now uint64
		now, end = clock()
		s.endPeriod(now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, start := s.builder, s.start
	s.addInuse(b)
	b.NameThreads(s.finalName)
	s.builder, s.start = s.newBuilder(), end
	s.period++
	s.cuts.Add(1)
	return b.Profile(start, end), start, end
}

// Counts returns what the session has seen so far.
func (s *Session) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Stats returns the BPF programs' counters.
func (s *Session) Stats() (sampler.Stats, error) { return s.sampler.Stats() }

// Close detaches and unloads everything, and turns the targets' allocation
// samplers off (they stay loaded, passing allocations through).
func (s *Session) Close() error {
	s.mu.Lock()
	var pids []int
	for pid := range s.mem {
		pids = append(pids, pid)
	}
	for _, tg := range s.targets {
		tg.close()
	}
	s.mu.Unlock()
	for _, pid := range pids {
		s.detachMemory(pid)
	}
	s.kernel.Close()
	return s.sampler.Close()
}

// UnwindStats says how many files have unwind tables loaded.
func (s *Session) UnwindStats() UnwindStats {
	if s.unwind == nil {
		return UnwindStats{}
	}
	return s.unwind.snapshot()
}

// ProgramStats returns the BPF programs' kernel run counts and run times.
func (s *Session) ProgramStats() (map[string]*ebpf.ProgramStats, error) {
	return s.sampler.ProgramStats()
}
