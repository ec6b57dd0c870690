package profiler

import (
	"testing"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/python"
	"github.com/bprof/bprof/pkg/sampler"
	"github.com/bprof/bprof/pkg/symbolize"
)

func TestStackMemo(t *testing.T) {
	base := func() *sampler.Sample {
		return &sampler.Sample{
			Kind: sampler.KindCPU, PID: 10, TID: 11, Time: 5, Flags: sampler.FlagPyTarget | sampler.FlagUserTables,
			Kernel: []uint64{0xffff1}, User: []uint64{0x401000, 0x402000},
			Python: []python.FrameRef{{Code: 0x7000, Check: 9, Instr: 12, Entry: true}},
		}
	}
	st := export.NewBuilder(export.Options{Rate: 100}).Stack(nil)
	for _, tc := range []struct {
		name   string
		change func(s *sampler.Sample)
		gen    memoGen // at the second find
		hit    bool
	}{
		{name: "same raw stack, other thread and time", change: func(s *sampler.Sample) { s.TID, s.Time = 12, 99 }, hit: true},
		{name: "other process", change: func(s *sampler.Sample) { s.PID = 13 }},
		{name: "other flags", change: func(s *sampler.Sample) { s.Flags |= sampler.FlagPyTruncated }},
		{name: "other native address", change: func(s *sampler.Sample) { s.User[1]++ }},
		{name: "a kernel address becomes a user one", change: func(s *sampler.Sample) {
			s.User = append([]uint64{s.Kernel[0]}, s.User...)
			s.Kernel = nil
		}},
		{name: "other instruction", change: func(s *sampler.Sample) { s.Python[0].Instr++ }},
		{name: "other check", change: func(s *sampler.Sample) { s.Python[0].Check++ }},
		{name: "check from the walker's cache", change: func(s *sampler.Sample) { s.Python[0].Cached = true }},
		{name: "mappings changed", change: func(s *sampler.Sample) {}, gen: memoGen{native: 1}},
		{name: "an interpreter attached or forgotten", change: func(s *sampler.Sample) {}, gen: memoGen{python: 1}},
		{name: "a Cut: another period's Builder", change: func(s *sampler.Sample) {}, gen: memoGen{cuts: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newStackMemo()
			if e := m.find(base(), memoGen{}); e != nil {
				t.Fatal("found in an empty memo")
			}
			m.put(st)
			s := base()
			tc.change(s)
			e := m.find(s, tc.gen)
			if (e != nil) != tc.hit {
				t.Fatalf("found: %v, want %v", e != nil, tc.hit)
			}
			if e != nil && e.stack != st {
				t.Fatal("found another stack")
			}
		})
	}
}

func TestStackMemoBound(t *testing.T) {
	m := newStackMemo()
	st := export.NewBuilder(export.Options{Rate: 100}).Stack(nil)
	s := &sampler.Sample{PID: 1, User: []uint64{0}}
	for i := range maxMemoStacks + 10 {
		s.User[0] = uint64(i)
		m.find(s, memoGen{})
		m.put(st)
	}
	if m.size > maxMemoStacks {
		t.Fatalf("%d entries, want at most %d", m.size, maxMemoStacks)
	}
}

func TestMemoizable(t *testing.T) {
	unknown := &symbolize.Module{Path: "[unknown]"}
	lib := &symbolize.Module{Path: "/usr/lib/libc.so.6"}
	for _, tc := range []struct {
		name   string
		frames []symbolize.Frame
		want   bool
	}{
		{"named", []symbolize.Frame{{Kind: symbolize.KindNative, Name: "write", Module: lib}, {Kind: symbolize.KindPython, Name: "f"}}, true},
		{"a walk's marker", []symbolize.Frame{export.Pseudo("[truncated]")}, true},
		{"an address in no mapping", []symbolize.Frame{{Kind: symbolize.KindNative, Name: "[unknown]+0x10", Module: unknown}}, false},
		{"an unreadable code object", []symbolize.Frame{export.Pseudo("[unknown python]")}, false},
	} {
		if got := memoizable(tc.frames); got != tc.want {
			t.Errorf("%s: memoizable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
