package flamegraph

import (
	"fmt"
	"testing"

	"github.com/google/pprof/profile"
)

// frameSpec is a frame of a hand-built profile: "py:qualname:file:line",
// "k:name" (kernel), "b:[name]" (bprof pseudo-frame) or "n:name" (libc).
type sampleSpec struct {
	stack  []string // root first
	values []int64  // samples, cpu, wall
	thread string
	tid    int64
}

// buildProfile builds a profile the way pkg/export does (docs/CONVENTIONS.md).
func buildProfile(t testing.TB, specs []sampleSpec) *profile.Profile {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}, {Type: "wall", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		Mapping: []*profile.Mapping{
			{ID: 1, File: "[python]"},
			{ID: 2, File: "[kernel.kallsyms]"},
			{ID: 3, File: "[bprof]"},
			{ID: 4, File: "/usr/lib/x86_64-linux-gnu/libc.so.6", Start: 0x7f0000000000, Limit: 0x7f0000200000, BuildID: "abc123"},
		},
	}
	locs := map[string]*profile.Location{}
	funcs := map[string]*profile.Function{}
	loc := func(spec string) *profile.Location {
		if l, ok := locs[spec]; ok {
			return l
		}
		var kind, name, file string
		var line int64
		if n, _ := fmt.Sscanf(spec, "py:%s", &name); n == 1 {
			kind = "py"
		}
		switch {
		case kind == "py":
			f := splitN(spec[3:], ':', 3)
			name, file = f[0], f[1]
			fmt.Sscanf(f[2], "%d", &line)
		default:
			kind, name = spec[:1], spec[2:]
		}
		m := map[string]*profile.Mapping{"py": p.Mapping[0], "k": p.Mapping[1], "b": p.Mapping[2], "n": p.Mapping[3]}[kind]
		fk := name + "\x00" + file
		fn, ok := funcs[fk]
		if !ok {
			fn = &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name, Filename: file, StartLine: line}
			funcs[fk] = fn
			p.Function = append(p.Function, fn)
		}
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: m, Line: []profile.Line{{Function: fn, Line: line}}}
		if kind == "n" {
			l.Address = m.Start + uint64(0x1000*l.ID)
		}
		locs[spec] = l
		p.Location = append(p.Location, l)
		return l
	}
	for _, s := range specs {
		smp := &profile.Sample{Value: s.values}
		for i := len(s.stack) - 1; i >= 0; i-- {
			smp.Location = append(smp.Location, loc(s.stack[i]))
		}
		if s.thread != "" {
			smp.Label = map[string][]string{"thread_name": {s.thread}}
			smp.NumLabel = map[string][]int64{"thread_id": {s.tid}, "pid": {4242}}
		}
		p.Sample = append(p.Sample, smp)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatalf("build profile: %v", err)
	}
	return p
}

func splitN(s string, sep byte, n int) []string {
	var out []string
	for len(out) < n-1 {
		i := indexByte(s, sep)
		if i < 0 {
			break
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
	return append(out, s)
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// smallProfile: a Python web handler, a native call into libc that enters
// the kernel, and an off-CPU wait; 10 ms per sample.
func smallProfile(t testing.TB) *profile.Profile {
	const ms = 1_000_000
	return buildProfile(t, []sampleSpec{
		{stack: []string{"py:<module>:app.py:1", "py:serve:app.py:10", "py:handle_request:app.py:20", "py:render:views.py:5"}, values: []int64{30, 30 * ms, 30 * ms}, thread: "MainThread", tid: 100},
		{stack: []string{"py:<module>:app.py:1", "py:serve:app.py:10", "py:handle_request:app.py:21", "py:query_db:db.py:7", "n:send", "k:sys_sendto"}, values: []int64{20, 20 * ms, 20 * ms}, thread: "MainThread", tid: 100},
		{stack: []string{"py:<module>:app.py:1", "py:serve:app.py:10", "py:handle_request:app.py:21", "py:query_db:db.py:7", "b:[off-cpu: sleep]"}, values: []int64{0, 0, 40 * ms}, thread: "MainThread", tid: 100},
		{stack: []string{"py:worker:jobs.py:3", "py:compute:jobs.py:9", "n:memcpy"}, values: []int64{40, 40 * ms, 40 * ms}, thread: "worker-1", tid: 101},
		{stack: []string{"py:worker:jobs.py:3", "b:[lost]"}, values: []int64{10, 10 * ms, 10 * ms}, thread: "worker-1", tid: 101},
	})
}
