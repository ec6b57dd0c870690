package export

import (
	"slices"
	"time"

	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/google/pprof/profile"
)

// Mapping file names that mark frame kinds (docs/CONVENTIONS.md).
const (
	PythonMapping = "[python]"
	KernelMapping = "[kernel.kallsyms]"
	PseudoMapping = "[bprof]"
)

// Options describe the profile a Builder makes.
type Options struct {
	Rate int  // sampling frequency in Hz: one on-CPU sample stands for 1e9/Rate ns
	Wall bool // add the wall/nanoseconds sample type
	// Memory adds the memory sample types after the others (MemoryTypes).
	Memory bool
}

// MemoryTypes are the memory profile's sample types, with the names and
// units of Go heap profiles so that pprof, Pyroscope and Grafana read them the
// same way. Their values are estimates of the true totals, already scaled
// (docs/CONVENTIONS.md): nothing downstream may scale them again.
var MemoryTypes = []string{"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}

// MemoryUnits are the units of MemoryTypes.
var MemoryUnits = []string{"count", "bytes", "count", "bytes"}

// Labels are what a sample is attributed to besides its stack.
type Labels struct {
	PID        int
	TID        int
	ThreadName string // the thread's, not the sample's: the last one given stands
	State      string // off-CPU samples: "sleep" or "runqueue"
}

// Values of one sample; Count is the number of samples it stands for. The
// memory values are estimates of the true totals (allocations and bytes).
type Values struct {
	Count, CPU, Wall int64

	AllocObjects, AllocSpace int64 // allocated during the profile's span
	InuseObjects, InuseSpace int64 // live at its end
}

// Builder accumulates samples into one profile. It is not safe for concurrent use.
type Builder struct {
	opts    Options
	mem     int // index of the first memory value, when Options.Memory
	p       *profile.Profile
	mapping map[string]*profile.Mapping // by Module identity, or a kind's pseudo file
	modules map[*symbolize.Module]*profile.Mapping
	fn      map[funcKey]*profile.Function
	loc     map[locKey]*profile.Location
	stacks  map[string]*Stack // by the locations' IDs
	sample  map[sampleKey]*profile.Sample
	key     []byte
	locs    []*profile.Location
	onCPU   map[int]*threadCPU // by TID, for wall time (SetOnCPU)
	names   map[threadID]string
}

// threadID names a thread across processes: a TID alone may be reused.
type threadID struct{ pid, tid int }

// threadCPU is one thread's on-CPU samples and its measured time on the CPU.
type threadCPU struct {
	labels   Labels
	samples  []*profile.Sample
	measured int64 // ns, -1 until SetOnCPU
	runqueue int64 // ns of preemptions whose stack was not captured (AddRunqueue)
}

// sampleKey is what tells two samples apart. The thread's name is not part
// of it: it is the thread's, one per profile, set at the end (see
// NameThreads).
type sampleKey struct {
	stack    *Stack
	pid, tid int
	state    string
}

type funcKey struct {
	name, file string
	start      int64
}

type locKey struct {
	mapping *profile.Mapping
	addr    uint64
	fn      *profile.Function
	line    int64
}

// NewBuilder starts an empty profile.
func NewBuilder(opts Options) *Builder {
	if opts.Rate <= 0 {
		opts.Rate = 100
	}
	period := int64(time.Second) / int64(opts.Rate)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "samples", Unit: "count"},
			{Type: "cpu", Unit: "nanoseconds"},
		},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     period,
		// pprof shows the last sample type unless told: make it CPU, so
		// `go tool pprof -top` means CPU and -sample_index=wall asks for wall.
		DefaultSampleType: "cpu",
	}
	if opts.Wall {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: "wall", Unit: "nanoseconds"})
	}
	mem := len(p.SampleType)
	if opts.Memory {
		for i, t := range MemoryTypes {
			p.SampleType = append(p.SampleType, &profile.ValueType{Type: t, Unit: MemoryUnits[i]})
		}
	}
	return &Builder{
		opts:    opts,
		mem:     mem,
		p:       p,
		mapping: map[string]*profile.Mapping{},
		modules: map[*symbolize.Module]*profile.Mapping{},
		fn:      map[funcKey]*profile.Function{},
		loc:     map[locKey]*profile.Location{},
		stacks:  map[string]*Stack{},
		sample:  map[sampleKey]*profile.Sample{},
		onCPU:   map[int]*threadCPU{},
		names:   map[threadID]string{},
	}
}

// Period is the CPU time one on-CPU sample stands for, in nanoseconds.
func (b *Builder) Period() int64 { return b.p.Period }

// AddCPU adds n on-CPU samples of the stack frames (leaf first): each counts
// one period of CPU time and, in a wall profile, the same of wall time.
func (b *Builder) AddCPU(frames []symbolize.Frame, l Labels, n int64) {
	b.AddCPUStack(b.Stack(frames), l, n)
}

// AddCPUStack is AddCPU for a Stack of this Builder.
func (b *Builder) AddCPUStack(st *Stack, l Labels, n int64) {
	v := Values{Count: n, CPU: n * b.p.Period}
	if b.opts.Wall {
		v.Wall = v.CPU
	}
	s := b.addStack(st, l, v)
	if b.opts.Wall {
		t := b.thread(l)
		if len(t.samples) == 0 || t.samples[len(t.samples)-1] != s {
			t.samples = append(t.samples, s)
		}
	}
}

// SetOnCPU gives the thread's measured time on the CPU in this profile's
// span. Profile then spreads it over the thread's on-CPU samples in
// proportion to their counts, in place of a period per sample, so the
// thread's wall time is exact while its stacks stay those sampled; a thread
// that ran but was never sampled gets an [on-cpu: not sampled] sample.
// Adds up over calls.
func (b *Builder) SetOnCPU(l Labels, ns int64) {
	if !b.opts.Wall || ns <= 0 {
		return
	}
	b.nameThread(l)
	t := b.thread(l)
	if t.measured < 0 {
		t.measured = 0
	}
	t.measured += ns
}

// AddRunqueue adds time the thread waited for a CPU after being preempted,
// where the kernel did not capture its stack. A preemption lands at a random
// point of the thread's run, as a CPU sample does, so Profile spreads this
// time over the thread's on-CPU stacks in proportion to their samples, under
// an [off-cpu: runqueue] leaf with state=runqueue. A thread with no on-CPU
// sample keeps it under [off-cpu: stack not captured].
func (b *Builder) AddRunqueue(l Labels, ns int64) {
	if !b.opts.Wall || ns <= 0 {
		return
	}
	b.nameThread(l)
	b.thread(l).runqueue += ns
}

func (b *Builder) thread(l Labels) *threadCPU {
	t := b.onCPU[l.TID]
	if t == nil {
		t = &threadCPU{labels: l, measured: -1}
		b.onCPU[l.TID] = t
	}
	return t
}

// spreadOnCPU puts each thread's measured on-CPU time into the wall values
// of its on-CPU samples, and its uncaptured preemptions beside them.
func (b *Builder) spreadOnCPU() {
	for _, t := range b.onCPU {
		var sampled int64
		var samples []*profile.Sample
		seen := map[*profile.Sample]bool{}
		for _, s := range t.samples {
			if !seen[s] {
				seen[s] = true
				samples = append(samples, s)
				sampled += s.Value[0]
			}
		}
		if t.measured >= 0 {
			if sampled == 0 && t.measured > 0 {
				b.Add([]symbolize.Frame{Pseudo("[on-cpu: not sampled]")}, t.labels.thread(), Values{Wall: t.measured})
			}
			// The running remainder makes the parts add up exactly.
			left, count := t.measured, sampled
			for _, s := range samples {
				w := left * s.Value[0] / count
				left -= w
				count -= s.Value[0]
				s.Value[2] += w - s.Value[0]*b.p.Period
			}
		}
		if t.runqueue > 0 {
			b.spreadRunqueue(t, samples, sampled)
		}
	}
}

func (b *Builder) spreadRunqueue(t *threadCPU, samples []*profile.Sample, sampled int64) {
	l := t.labels.thread()
	l.State = "runqueue"
	leaf := Pseudo("[off-cpu: runqueue]")
	if sampled == 0 {
		b.Add([]symbolize.Frame{leaf, Pseudo("[off-cpu: stack not captured]")}, l, Values{Wall: t.runqueue})
		return
	}
	rq := b.location(&leaf)
	left, count := t.runqueue, sampled
	for _, s := range samples {
		w := left * s.Value[0] / count
		left -= w
		count -= s.Value[0]
		b.locs = append(b.locs[:0], rq)
		b.locs = append(b.locs, s.Location...)
		b.addStack(b.intern(b.locs), l, Values{Wall: w})
	}
}

// thread is l without what varies between one thread's samples.
// Its name is left out: the name last given for the thread stands.
func (l Labels) thread() Labels { return Labels{PID: l.PID, TID: l.TID} }

// Add adds one sample with explicit values.
func (b *Builder) Add(frames []symbolize.Frame, l Labels, v Values) { b.add(frames, l, v) }

func (b *Builder) add(frames []symbolize.Frame, l Labels, v Values) *profile.Sample {
	return b.addStack(b.Stack(frames), l, v)
}

// addStack adds a sample of the stack st.
func (b *Builder) addStack(st *Stack, l Labels, v Values) *profile.Sample {
	if st.b != b {
		panic("export: a Stack added to a Builder other than its own")
	}
	b.nameThread(l)
	k := sampleKey{stack: st, pid: l.PID, tid: l.TID, state: l.State}
	s := b.sample[k]
	if s == nil {
		s = &profile.Sample{
			Location: slices.Clone(st.locs),
			Value:    make([]int64, len(b.p.SampleType)),
			NumLabel: map[string][]int64{"pid": {int64(l.PID)}, "thread_id": {int64(l.TID)}},
			Label:    map[string][]string{},
		}
		if l.State != "" {
			s.Label["state"] = []string{l.State}
		}
		b.sample[k] = s
		b.p.Sample = append(b.p.Sample, s)
	}
	s.Value[0] += v.Count
	s.Value[1] += v.CPU
	if b.opts.Wall {
		s.Value[2] += v.Wall
	}
	if b.opts.Memory {
		s.Value[b.mem] += v.AllocObjects
		s.Value[b.mem+1] += v.AllocSpace
		s.Value[b.mem+2] += v.InuseObjects
		s.Value[b.mem+3] += v.InuseSpace
	}
	return s
}

// nameThread notes the thread's name, if l has one: the last one given stands.
func (b *Builder) nameThread(l Labels) {
	if l.ThreadName != "" {
		b.names[threadID{l.PID, l.TID}] = l.ThreadName
	}
}

// NameThreads gives each thread of the profile the name rename returns for
// it, given the last name its samples came with. A thread is named once per
// profile, when it ends: a thread's first samples can come before the
// interpreter knows its name (threading registers a thread once it runs),
// and labelling them with what was known then would split one thread in two.
func (b *Builder) NameThreads(rename func(pid, tid int, name string) string) {
	for id, name := range b.names {
		b.names[id] = rename(id.pid, id.tid, name)
	}
}

// Samples is the number of distinct (stack, labels) samples so far.
func (b *Builder) Samples() int { return len(b.p.Sample) }

// Profile returns the profile covering [start, end). The Builder must not be
// used afterwards.
func (b *Builder) Profile(start, end time.Time) *profile.Profile {
	b.spreadOnCPU()
	for _, s := range b.p.Sample {
		if name := b.names[threadID{int(s.NumLabel["pid"][0]), int(s.NumLabel["thread_id"][0])}]; name != "" {
			s.Label["thread_name"] = []string{name}
		}
	}
	b.p.TimeNanos = start.UnixNano()
	b.p.DurationNanos = end.Sub(start).Nanoseconds()
	return b.p
}

func (b *Builder) location(f *symbolize.Frame) *profile.Location {
	m := b.mappingOf(f)
	fn := b.function(f)
	k := locKey{mapping: m, fn: fn, line: f.Line}
	if f.Kind == symbolize.KindNative || f.Kind == symbolize.KindKernel {
		k.addr = f.Addr
	}
	if loc, ok := b.loc[k]; ok {
		return loc
	}
	loc := &profile.Location{
		ID:      uint64(len(b.p.Location) + 1),
		Mapping: m,
		Address: k.addr,
		Line:    []profile.Line{{Function: fn, Line: f.Line}},
	}
	b.loc[k] = loc
	b.p.Location = append(b.p.Location, loc)
	return loc
}

func (b *Builder) function(f *symbolize.Frame) *profile.Function {
	k := funcKey{name: f.Name, file: f.File, start: f.StartLine}
	if fn, ok := b.fn[k]; ok {
		return fn
	}
	fn := &profile.Function{
		ID:         uint64(len(b.p.Function) + 1),
		Name:       f.Name,
		SystemName: f.Name,
		Filename:   f.File,
		StartLine:  f.StartLine,
	}
	b.fn[k] = fn
	b.p.Function = append(b.p.Function, fn)
	return fn
}

func (b *Builder) mappingOf(f *symbolize.Frame) *profile.Mapping {
	switch f.Kind {
	case symbolize.KindPython:
		return b.pseudoMapping(PythonMapping)
	case symbolize.KindPseudo:
		return b.pseudoMapping(PseudoMapping)
	}
	if f.Module == nil {
		if f.Kind == symbolize.KindKernel {
			return b.pseudoMapping(KernelMapping)
		}
		return b.pseudoMapping("[unknown]")
	}
	if m, ok := b.modules[f.Module]; ok {
		return m
	}
	m := &profile.Mapping{
		ID:           uint64(len(b.p.Mapping) + 1),
		Start:        f.Module.Start,
		Limit:        f.Module.Limit,
		Offset:       f.Module.Offset,
		File:         f.Module.Path,
		BuildID:      f.Module.BuildID,
		HasFunctions: true,
	}
	b.modules[f.Module] = m
	b.p.Mapping = append(b.p.Mapping, m)
	return m
}

func (b *Builder) pseudoMapping(file string) *profile.Mapping {
	if m, ok := b.mapping[file]; ok {
		return m
	}
	m := &profile.Mapping{
		ID:           uint64(len(b.p.Mapping) + 1),
		File:         file,
		HasFunctions: true,
	}
	b.mapping[file] = m
	b.p.Mapping = append(b.p.Mapping, m)
	return m
}

// Pseudo returns a bprof pseudo-frame such as "[lost]" or "[truncated]".
func Pseudo(name string) symbolize.Frame {
	return symbolize.Frame{Kind: symbolize.KindPseudo, Name: name}
}
