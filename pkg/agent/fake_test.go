package agent

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// fakeSource adds one sample per target every tick while it runs, on one of
// two stacks, like a Session would.
type fakeSource struct {
	tick time.Duration
	wall bool

	mu      sync.Mutex
	pids    map[int]bool     // added; false once the process exited (Exit)
	removed map[int]bool     // removed since added
	counts  map[[2]int]int64 // (pid, stack) → samples
	start   time.Time
	total   int64
	closed  bool
}

func newFakeSource(wall bool) *fakeSource {
	return &fakeSource{tick: 2 * time.Millisecond, wall: wall, pids: map[int]bool{}, removed: map[int]bool{},
		counts: map[[2]int]int64{}, start: time.Now()}
}

func (f *fakeSource) Add(pid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pids[pid] = true
	return nil
}

// Exit makes pid's process end: no sample comes for it any more, as none
// would from a real one.
func (f *fakeSource) Exit(pid int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.pids[pid]; ok {
		f.pids[pid] = false
	}
}

func (f *fakeSource) Remove(pid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.pids[pid]; ok {
		f.removed[pid] = true
	}
	delete(f.pids, pid)
	return nil
}

func (f *fakeSource) Run(ctx context.Context) error {
	t := time.NewTicker(f.tick)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		f.mu.Lock()
		for pid, running := range f.pids {
			if !running {
				continue
			}
			f.counts[[2]int{pid, n % 2}]++
			f.total++
		}
		f.mu.Unlock()
	}
}

// Removed reports whether pid was added and then removed.
func (f *fakeSource) Removed(pid int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.pids[pid]
	return f.removed[pid] && !ok
}

func (f *fakeSource) Total() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}

func (f *fakeSource) Cut() (*profile.Profile, time.Time, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := time.Now()
	start := f.start
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        1e7,
		TimeNanos:     start.UnixNano(),
		DurationNanos: end.Sub(start).Nanoseconds(),
	}
	if f.wall {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: "wall", Unit: "nanoseconds"})
	}
	m := &profile.Mapping{ID: 1, File: "[python]"}
	p.Mapping = []*profile.Mapping{m}
	keys := make([][2]int, 0, len(f.counts))
	for k := range f.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		n := f.counts[k]
		fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: fmt.Sprintf("work%d", k[1]), Filename: "app.py"}
		loc := &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: m, Line: []profile.Line{{Function: fn, Line: 10}}}
		p.Function = append(p.Function, fn)
		p.Location = append(p.Location, loc)
		v := []int64{n, n * 1e7}
		if f.wall {
			v = append(v, n*1e7)
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: v,
			NumLabel: map[string][]int64{"pid": {int64(k[0])}, "thread_id": {int64(k[0])}}})
	}
	f.counts = map[[2]int]int64{}
	f.start = end
	return p, start, end
}

func (f *fakeSource) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// memSink keeps the batches it is sent.
type memSink struct {
	mu      sync.Mutex
	batches []*Batch
	closed  bool
}

func (m *memSink) Send(b *Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches = append(m.batches, b)
	return nil
}

func (m *memSink) Close() error   { m.closed = true; return nil }
func (m *memSink) String() string { return "memory" }

func (m *memSink) all() []*Batch {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Batch(nil), m.batches...)
}
