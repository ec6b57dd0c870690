package symbolize

import (
	"debug/elf"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/python"
	"github.com/bprof/bprof/pkg/unwind"
)

// PyFlags are what the BPF walker reported about a sample's Python stack.
type PyFlags struct {
	Truncated     bool // deeper than the walk's limit: a [truncated] frame ends the stack
	ReadError     bool // a frame could not be read: the stack ends early
	UnknownThread bool // a Python process, but the thread's state was unknown
	// NativeUnwound: the native frames came from unwind tables, so the
	// interpreter's eval-loop frames among them are where Python frames go.
	NativeUnwound bool
	// NativeComplete: the native walk reached the outermost frame.
	NativeComplete bool
	// SampledAt is when the walker ran, in CLOCK_MONOTONIC nanoseconds: the
	// check bytes of frames it took from its cache are verified after that.
	SampledAt uint64
}

// Python names Python frames: it finds the interpreter of each target, lists
// its thread states for the sampler, and reads code objects (cached by
// address and check value) to name the frames the BPF walker recorded.
type Python struct {
	native *Native
	cache  *process.Cache // the native symbolizer's, or one of its own

	clock   monoClock     // when check bytes are read, in the samples' clock
	reads   atomic.Uint64 // code objects read, and checks found changed (CodeReads)
	changes atomic.Uint64 // processes attached or forgotten (Changes)

	mu    sync.Mutex
	procs map[int]*pyProc
	files map[*process.Binary]*interpFile // by the cache's parsed file: one per file identity
}

// interpFile is what Attach reads from an interpreter's file: its symbols
// and the range of the bytecode loop, as file addresses.
type interpFile struct {
	syms           python.FileSymbols
	evalLo, evalHi uint64
}

// maxInterpFiles bounds Python.files; when full it starts again.
const maxInterpFiles = 256

type pyProc struct {
	interp *python.Interpreter
	mem    *process.Memory
	path   string // the interpreter's file as /proc/PID/maps names it
	// [evalLo, evalHi) holds the bytecode loop, _PyEval_EvalFrameDefault
	// (runtime addresses; 0, 0 when unknown).
	evalLo, evalHi uint64
	codes          map[codeKey]*python.Code
	// checks is the check bytes read at each code address, and when: a
	// cached check of a sample taken before then is verified by it.
	checks map[uint64]readCheck
	// hot lists the code addresses samples asked about lately, whose
	// checks are read again together (refreshChecks).
	hot []uint64
}

// readCheck is a code object's check bytes as read at a time (Monotonic),
// and the time of the last sample that asked about them.
type readCheck struct {
	check, at, used uint64
	hot             bool // in pyProc.hot
}

const (
	// maxHotCodes bounds pyProc.hot, and so the words of one read.
	maxHotCodes = 512
	// hotFor is how long after a sample last asked about a code object
	// its check is still read with the others.
	hotFor = uint64(time.Second)
)

type codeKey struct{ addr, check uint64 }

// maxCodesPerProcess bounds the code-object cache of one process; when full
// it starts again, which costs re-reading the hot code objects once.
const maxCodesPerProcess = 1 << 16

// NewPython returns a Python symbolizer that uses native to tell interpreter
// frames from the rest, and shares its cache of parsed files; native may be
// nil, for Attach alone.
func NewPython(native *Native) *Python {
	p := &Python{native: native, procs: map[int]*pyProc{}, files: map[*process.Binary]*interpFile{}, clock: newMonoClock()}
	if native != nil {
		p.cache = native.cache
	} else {
		p.cache = process.NewCache()
	}
	return p
}

// Attach finds the CPython in pid. It returns a nil interpreter and no error
// for a process that runs no Python, and an error (meant as a one-line
// warning) for a Python bprof cannot walk. threads maps each thread's
// pointer (fsbase) to its PyThreadState.
func (p *Python) Attach(pid int) (in *python.Interpreter, threads map[uint64]uint64, err error) {
	maps, err := process.ReadMaps(pid)
	if err != nil {
		return nil, nil, err
	}
	var m *process.Mapping
	for i := range maps {
		if python.IsInterpreterFile(maps[i].FilePath()) && maps[i].Offset == 0 {
			m = &maps[i]
			// libpython wins over the executable that links it.
			if strings.HasPrefix(filepath.Base(m.FilePath()), "libpython") {
				break
			}
		}
	}
	if m == nil {
		return nil, nil, nil
	}
	bin, err := p.cache.Binary(pid, *m)
	if err != nil {
		return nil, nil, fmt.Errorf("process %d runs %s, which bprof cannot read: %w", pid, m.Path, err)
	}
	bias, err := bin.Bias(*m)
	if err != nil {
		return nil, nil, fmt.Errorf("process %d: load address of %s: %w", pid, m.Path, err)
	}
	file, err := p.interpFile(pid, *m, bin)
	if err != nil {
		return nil, nil, fmt.Errorf("process %d: read %s: %w", pid, m.Path, err)
	}
	mem := process.NewMemory(pid)
	in, err = python.FindWith(file.syms, m.FilePath(), bias, mem)
	if err != nil {
		return nil, nil, fmt.Errorf("process %d: %w; profiling it with native frames only", pid, err)
	}
	pp := &pyProc{interp: in, mem: mem, path: m.Path, codes: map[codeKey]*python.Code{}, checks: map[uint64]readCheck{}}
	if file.evalHi > file.evalLo {
		pp.evalLo, pp.evalHi = file.evalLo+bias, file.evalHi+bias
	}
	p.mu.Lock()
	p.procs[pid] = pp
	p.mu.Unlock()
	p.changes.Add(1)
	threads, err = p.Threads(pid)
	return in, threads, err
}

// interpFile is what bprof needs of an interpreter's file, read once per file
// however many processes run it: a host of Python processes all map the same
// python3.X, and reading its symbol and unwind tables again for each new one
// cost an agent hundreds of MB of allocation churn a minute (RELIABILITY.md).
func (p *Python) interpFile(pid int, m process.Mapping, bin *process.Binary) (*interpFile, error) {
	p.mu.Lock()
	f, ok := p.files[bin]
	p.mu.Unlock()
	if ok {
		return f, nil
	}
	r, err := process.OpenMapped(pid, m)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	// The cache has read the file's symbols already: look them up there
	// rather than decode the tables again.
	f = &interpFile{syms: python.FileSymbols{
		Runtime:   lookup(bin, "_PyRuntime"),
		PyVersion: lookup(bin, "Py_Version"),
		CodeType:  lookup(bin, "PyCode_Type"),
	}}
	// The bytecode loop is the interpreter's largest function: that finds it
	// where a stripped build's LTO left it as an unnamed clone.
	if r, err := unwind.LargestFunction(ef); err == nil && r.End > r.Start {
		f.evalLo, f.evalHi = r.Start, r.End
	}
	p.mu.Lock()
	if len(p.files) >= maxInterpFiles {
		clear(p.files)
	}
	p.files[bin] = f
	p.mu.Unlock()
	return f, nil
}

// lookup returns the file address of name in bin, 0 when absent.
func lookup(bin *process.Binary, name string) uint64 {
	v, _ := bin.Lookup(name)
	return v
}

// Threads lists pid's Python threads: thread pointer to PyThreadState.
func (p *Python) Threads(pid int) (map[uint64]uint64, error) {
	pp := p.proc(pid)
	if pp == nil {
		return nil, fmt.Errorf("process %d is not an attached Python", pid)
	}
	ts, err := pp.interp.Threads(pp.mem)
	if err != nil {
		return nil, fmt.Errorf("list Python threads of %d: %w", pid, err)
	}
	m := make(map[uint64]uint64, len(ts))
	for _, t := range ts {
		m[t.ThreadID] = t.TState
	}
	return m, nil
}

// Interpreter returns the CPython attached in pid, or nil.
func (p *Python) Interpreter(pid int) *python.Interpreter {
	if pp := p.proc(pid); pp != nil {
		return pp.interp
	}
	return nil
}

// Attached reports whether pid is an attached CPython.
func (p *Python) Attached(pid int) bool { return p.proc(pid) != nil }

// Forget drops what is known of pid.
func (p *Python) Forget(pid int) {
	p.mu.Lock()
	delete(p.procs, pid)
	p.mu.Unlock()
	p.changes.Add(1)
}

// Changes counts the processes attached and forgotten. Names a caller kept
// for a stack (Interleave's) hold while it does not change, as long as the
// frames the walker took from its cache are StillHeld.
func (p *Python) Changes() uint64 { return p.changes.Load() }

// StillHeld reports whether each of refs that the walker took from its cache
// still had its check after sampledAt, as Interleave would find: a caller
// that kept the names of an identical earlier stack asks this in place of
// naming the stack again. False for a process not attached.
func (p *Python) StillHeld(pid int, refs []python.FrameRef, sampledAt uint64) bool {
	pp := p.proc(pid)
	if pp == nil {
		return false
	}
	// Most checks were read after the sample (refreshChecks reads the hot
	// ones a batch at a time): those are compared under one lock.
	p.mu.Lock()
	for _, ref := range refs {
		if !ref.Cached {
			continue
		}
		held, read := p.readAfter(pp, ref, sampledAt)
		if !read {
			p.mu.Unlock()
			if !p.checkStillHeld(pp, ref, sampledAt) {
				return false
			}
			p.mu.Lock()
			continue
		}
		if !held {
			p.mu.Unlock()
			p.reads.Add(1)
			return false
		}
	}
	p.mu.Unlock()
	return true
}

func (p *Python) proc(pid int) *pyProc {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.procs[pid]
}

// Interleave turns frames (kernel and native frames, leaf first, native ones
// from index nat on) plus the Python frames the walker recorded into one
// stack, leaf first, as the program nests. When the native frames came from
// unwind tables, each group of Python frames goes right above (callee-side
// of) the eval-loop frame that runs it (see interleaveEval). Otherwise the
// native frames below the interpreter's leaf-most frame are dropped, as a
// frame-pointer walk through CPython is not reliable, and the Python frames
// follow it. The stack may be built in out's array, which must not be
// frames' (a caller naming many samples passes the same two buffers, turn
// about, and allocates nothing).
func (p *Python) Interleave(pid int, frames []Frame, nat int, py []python.FrameRef, flags PyFlags, out []Frame) []Frame {
	pp := p.proc(pid)
	if pp == nil || (len(py) == 0 && !flags.ReadError && !flags.Truncated) {
		if flags.UnknownThread && pp != nil {
			frames = append(frames, pseudo("[unknown python thread]"))
		}
		return frames
	}
	if flags.NativeUnwound {
		if out, ok := p.interleaveEval(pp, frames, nat, py, flags, out[:0]); ok {
			return out
		}
	}
	cut := len(frames)
	for i := nat; i < len(frames); i++ {
		if frames[i].Module != nil && frames[i].Module.Path == pp.path {
			cut = i + 1 // the interpreter's leaf-most frame is exact: it is where the sample hit
			break
		}
	}
	frames = frames[:cut]
	// Below the leaf, a frame-pointer walk through code built without frame
	// pointers yields "return addresses" in the heap or the stack: not code.
	kept := frames[:nat]
	for i := nat; i < len(frames); i++ {
		if i == nat || frames[i].Module == nil || !strings.HasPrefix(frames[i].Module.Path, "[") {
			kept = append(kept, frames[i])
		}
	}
	frames = kept
	for _, ref := range py {
		frames = p.appendPyFrame(frames, pp, ref, flags.SampledAt)
	}
	switch {
	case flags.ReadError:
		frames = append(frames, pseudo("[python stack unreadable]"))
	case flags.Truncated:
		frames = append(frames, pseudo("[truncated]"))
	}
	return frames
}

// appendPyFrame appends the frame of ref to out, but for the frame of the
// shim CPython 3.13+ runs between a call of a class and its __init__
// (_Py_InitCleanup, which checks that __init__ returned None): it is no
// code of the program, and would show as a function named __init__ in a
// file named __init__ under every Python __init__.
func (p *Python) appendPyFrame(out []Frame, pp *pyProc, ref python.FrameRef, sampledAt uint64) []Frame {
	f := p.pyFrame(pp, ref, sampledAt)
	if f.Kind == KindPython && f.Name == "__init__" && f.File == "__init__" && f.StartLine == 0 {
		return out
	}
	return append(out, f)
}

func (p *Python) pyFrame(pp *pyProc, ref python.FrameRef, sampledAt uint64) Frame {
	if ref.Cached && !p.checkStillHeld(pp, ref, sampledAt) {
		return pseudo(unknownPython)
	}
	k := codeKey{ref.Code, ref.Check}
	p.mu.Lock()
	c, ok := pp.codes[k]
	p.mu.Unlock()
	if !ok {
		var err error
		p.reads.Add(1)
		c, err = python.ReadCode(pp.mem, pp.interp.Offsets, pp.interp.Version, ref.Code)
		switch {
		case err != nil:
			// Maybe caught mid-change: try again at the next sample, uncached.
			return pseudo(unknownPython)
		case c.Check != ref.Check || (pp.interp.CodeType != 0 && c.Type != pp.interp.CodeType):
			// No longer the code object the sample saw (freed and the
			// address reused): say so rather than guess a name.
			c = nil
		}
		p.mu.Lock()
		if len(pp.codes) >= maxCodesPerProcess {
			clear(pp.codes)
		}
		pp.codes[k] = c
		p.mu.Unlock()
	}
	if c == nil {
		return pseudo(unknownPython)
	}
	name := c.QualName
	if name == "" {
		name = c.Name
	}
	return Frame{
		Kind:      KindPython,
		Name:      name,
		File:      c.File,
		Line:      int64(c.Line(int(ref.Instr))),
		StartLine: int64(c.FirstLine),
	}
}

// checkStillHeld tells whether the code object at ref.Code had ref.Check
// after the sample, when the walker took the check from its cache: reading
// the object then tells a reused address (other bytes) from the object the
// cache saw. One read serves every sample taken before it, and the checks
// of all the code objects samples asked about lately are read together, so
// a batch of samples costs about one system call. A process that can no
// longer be read (it exited) is taken at the walker's word.
func (p *Python) checkStillHeld(pp *pyProc, ref python.FrameRef, sampledAt uint64) bool {
	p.mu.Lock()
	held, read := p.readAfter(pp, ref, sampledAt)
	p.mu.Unlock()
	if read {
		if !held {
			p.reads.Add(1)
		}
		return held
	}
	check, ok := p.refreshChecks(pp, ref.Code, sampledAt)
	if !ok {
		return true
	}
	if check != ref.Check {
		p.reads.Add(1)
		return false
	}
	return true
}

// readAfter notes that a sample of sampledAt asked about ref's code object
// and, if its check was read after that sample, reports whether ref still
// held it. Called with p.mu held.
func (p *Python) readAfter(pp *pyProc, ref python.FrameRef, sampledAt uint64) (held, read bool) {
	r, ok := pp.checks[ref.Code]
	if !ok {
		return false, false
	}
	r.used = max(r.used, sampledAt)
	pp.checks[ref.Code] = r
	if r.at <= sampledAt {
		return false, false
	}
	return r.check == ref.Check, true
}

// CodeReads counts the code objects read from targets, and the cached
// checks found changed. While it grows, the targets' code is changing, and
// samples are best named soon after they are taken.
func (p *Python) CodeReads() uint64 { return p.reads.Load() }

// refreshChecks reads the check bytes of the code object at addr again, and
// with them those of the hot code objects not read since sampledAt: the
// samples of the same batch will ask about most of them. It returns addr's
// check, or false when it could not be read.
func (p *Python) refreshChecks(pp *pyProc, addr, sampledAt uint64) (uint64, bool) {
	addrs := []uint64{addr}
	p.mu.Lock()
	hot := pp.hot[:0]
	for _, a := range pp.hot {
		r := pp.checks[a]
		if r.used+hotFor < sampledAt {
			r.hot = false
			pp.checks[a] = r
			continue
		}
		hot = append(hot, a)
		if a != addr && r.at <= sampledAt {
			addrs = append(addrs, a)
		}
	}
	pp.hot = hot
	p.mu.Unlock()

	// The time is taken before the read, so a sample it serves was surely
	// taken before the bytes were read.
	at := p.clock.Now()
	checks := make([]uint64, len(addrs))
	n, _ := python.ReadChecks(pp.mem, pp.interp.Offsets, addrs, checks)

	p.mu.Lock()
	defer p.mu.Unlock()
	if len(pp.checks)+n > maxCodesPerProcess {
		clear(pp.checks)
		pp.hot = pp.hot[:0]
	}
	for i, a := range addrs[:n] {
		r, ok := pp.checks[a]
		r.check, r.at = checks[i], at
		if !ok {
			r.used = sampledAt
		}
		if !r.hot && len(pp.hot) < maxHotCodes {
			r.hot = true
			pp.hot = append(pp.hot, a)
		}
		pp.checks[a] = r
	}
	// Gone (a process that exited before its last samples were named):
	// nothing to check against.
	return checks[0], n > 0
}

func pseudo(name string) Frame { return Frame{Kind: KindPseudo, Name: name} }

// maxTID is the largest pid_max Linux allows (PID_MAX_LIMIT).
const maxTID = 4 << 20

// threadsByTID lists pid's Python threads by TID: 3.11+'s native_thread_id,
// or before that glibc's record of the TID behind the thread's pthread_t,
// both in the process's own PID namespace. Threads with neither are left out.
func (p *Python) threadsByTID(pid int) (*pyProc, map[int]python.Thread) {
	pp := p.proc(pid)
	if pp == nil {
		return nil, nil
	}
	threads, err := pp.interp.Threads(pp.mem)
	if err != nil {
		return pp, nil
	}
	out := make(map[int]python.Thread, len(threads))
	for _, th := range threads {
		tid := int(th.NativeID)
		if tid == 0 {
			// The TID in the process's own PID namespace; the caller maps
			// it (NSpid). Garbage under another C library matches no TID
			// the caller asks about.
			if t, err := python.PthreadTID(pp.mem, th.ThreadID); err == nil && t > 0 && t <= maxTID {
				tid = t
			}
		}
		if tid != 0 {
			out[tid] = th
		}
	}
	return pp, out
}

// ThreadRefs walks the Python stacks of the given threads of pid, as the BPF
// walker would (leaf first, entry frames marked), by TID.
func (p *Python) ThreadRefs(pid int, tids []int) map[int][]python.FrameRef {
	pp, threads := p.threadsByTID(pid)
	out := map[int][]python.FrameRef{}
	for _, tid := range tids {
		th, ok := threads[tid]
		if !ok {
			continue
		}
		if refs, err := pp.interp.Stack(pp.mem, th.TState, maxSnapshotFrames); err == nil {
			out[tid] = refs
		}
	}
	return out
}

// ThreadStacks walks, from user space, the Python stacks of the threads tids
// of pid (leaf first), by TID: for threads that are blocked, whose stacks the
// BPF walker never sees. Threads whose thread state cannot be tied to their
// TID (see threadsByTID) are left out.
func (p *Python) ThreadStacks(pid int, tids []int) map[int][]Frame {
	out := map[int][]Frame{}
	pp := p.proc(pid)
	for tid, refs := range p.ThreadRefs(pid, tids) {
		frames := make([]Frame, 0, len(refs))
		for _, r := range refs {
			frames = p.appendPyFrame(frames, pp, r, 0)
		}
		out[tid] = frames
	}
	return out
}

// maxSnapshotFrames bounds a user-space walk, like the BPF walker's limit.
const maxSnapshotFrames = 128

// ThreadNames returns the threading.Thread names of pid's Python threads,
// by TID. The TID is the thread state's native_thread_id (3.11+), or glibc's
// record of it for the thread's pthread_t before that. Threads that
// threading does not know (C threads, a thread not started yet) are absent.
func (p *Python) ThreadNames(pid int) (map[int]string, error) {
	pp, threads := p.threadsByTID(pid)
	if pp == nil {
		return nil, fmt.Errorf("process %d is not an attached Python", pid)
	}
	names, err := pp.interp.ThreadNames(pp.mem)
	if err != nil && len(names) == 0 {
		return nil, fmt.Errorf("read Python thread names of %d: %w", pid, err)
	}
	out := make(map[int]string, len(names))
	for tid, th := range threads {
		if name, ok := names[th.ThreadID]; ok {
			out[tid] = name
		}
	}
	return out, nil
}
