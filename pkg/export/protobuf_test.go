package export

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/google/pprof/profile"
)

// encode's output must read back as the pprof library's own encoding does:
// the same profile, field for field.
func TestEncodeReadsBackAsLibrary(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *profile.Profile
	}{
		{"every field", everyField()},
		{"builder", builderProfile(t)},
		{"random", randomProfile(rand.New(rand.NewPCG(3, 4)), 300)},
		{"empty", &profile.Profile{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ours, lib bytes.Buffer
			if err := encode(&ours, tc.p); err != nil {
				t.Fatal(err)
			}
			if err := tc.p.WriteUncompressed(&lib); err != nil {
				t.Fatal(err)
			}
			got, err := profile.ParseData(ours.Bytes())
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			want, err := profile.ParseData(lib.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if g, w := got.String(), want.String(); g != w {
				t.Errorf("read back differs from the library's encoding:\n got:\n%s\nwant:\n%s", clip(g), clip(w))
			}
			if !equalExtras(got, want) {
				t.Errorf("drop/keep frames, doc URL or default sample type differ: got %q %q %q %q, want %q %q %q %q",
					got.DropFrames, got.KeepFrames, got.DocURL, got.DefaultSampleType,
					want.DropFrames, want.KeepFrames, want.DocURL, want.DefaultSampleType)
			}
		})
	}
}

func equalExtras(a, b *profile.Profile) bool {
	return a.DropFrames == b.DropFrames && a.KeepFrames == b.KeepFrames && a.DocURL == b.DocURL &&
		a.DefaultSampleType == b.DefaultSampleType && strings.Join(a.Comments, "\x00") == strings.Join(b.Comments, "\x00")
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "…"
	}
	return s
}

// everyField sets each field of profile.proto at least once, with values
// that need care: negative numbers, an empty comment, a location with no
// mapping, inlined lines, numeric labels with and without units.
func everyField() *profile.Profile {
	m := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x500000, Offset: 0x1000, File: "/bin/app", BuildID: "beef",
		HasFunctions: true, HasFilenames: true, HasLineNumbers: true, HasInlineFrames: true}
	f1 := &profile.Function{ID: 1, Name: "main", SystemName: "main_sys", Filename: "/src/main.c", StartLine: 10}
	f2 := &profile.Function{ID: 2, Name: "helper", Filename: "/src/h.c"}
	l1 := &profile.Location{ID: 1, Mapping: m, Address: 0x401000, Line: []profile.Line{{Function: f2, Line: 5, Column: 3}, {Function: f1, Line: 12}}, IsFolded: true}
	l2 := &profile.Location{ID: 2, Line: []profile.Line{{Function: f1, Line: -1}}}
	return &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		DefaultSampleType: "cpu",
		Sample: []*profile.Sample{
			{Location: []*profile.Location{l1, l2}, Value: []int64{3, -7},
				Label:    map[string][]string{"thread": {"main", ""}, "pid": {"7"}},
				NumLabel: map[string][]int64{"bytes": {512, -1}, "tid": {8}}, NumUnit: map[string][]string{"bytes": {"bytes", "bytes"}}},
			{Location: []*profile.Location{l2}, Value: []int64{0, 1 << 40}},
		},
		Mapping:       []*profile.Mapping{m},
		Location:      []*profile.Location{l1, l2},
		Function:      []*profile.Function{f1, f2},
		DropFrames:    "runtime\\..*",
		KeepFrames:    "main",
		TimeNanos:     1_700_000_000_000_000_000,
		DurationNanos: int64(10 * time.Second),
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10_000_000,
		Comments:      []string{"first", "", "third"},
		DocURL:        "https://example.com/doc",
	}
}

// builderProfile is what a Session hands the writers: the Builder's output
// for kernel, native and Python frames, threads and wall time.
func builderProfile(t *testing.T) *profile.Profile {
	t.Helper()
	libc := &symbolize.Module{Path: "/usr/lib/libc.so.6", BuildID: "abcd", Start: 0x7f0000, Limit: 0x7f9000}
	kern := &symbolize.Module{Path: KernelMapping}
	b := NewBuilder(Options{Rate: 100, Wall: true})
	for i := range 50 {
		frames := []symbolize.Frame{
			{Kind: symbolize.KindKernel, Name: "do_syscall_64", Module: kern, Addr: 0xffff1},
			{Kind: symbolize.KindNative, Name: "write", Module: libc, Addr: 0x7f1234 + uint64(i%5)},
			{Kind: symbolize.KindPython, Name: "f", File: "/srv/app.py", Line: int64(i % 7), StartLine: 1},
		}
		b.AddCPU(frames, Labels{PID: 7, TID: 8 + i%3, ThreadName: "worker"}, 1)
		b.Add(frames, Labels{PID: 7, TID: 8, ThreadName: "worker", State: "sleep"}, Values{Wall: int64(i) * 1000})
	}
	start := time.Unix(1700000000, 0)
	return b.Profile(start, start.Add(time.Second))
}

// randomProfile makes a valid profile of n samples over random stacks.
func randomProfile(r *rand.Rand, n int) *profile.Profile {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "wall", Unit: "nanoseconds"}}}
	for i := range 40 {
		p.Function = append(p.Function, &profile.Function{ID: uint64(i + 1), Name: "fn" + string(rune('a'+i%26)) + strings.Repeat("x", r.IntN(5)), Filename: "/f" + string(rune('a'+i%7)) + ".py", StartLine: int64(r.IntN(100))})
	}
	for i := range 100 {
		l := &profile.Location{ID: uint64(i + 1), Address: r.Uint64N(1 << 48)}
		for range 1 + r.IntN(3) {
			l.Line = append(l.Line, profile.Line{Function: p.Function[r.IntN(len(p.Function))], Line: int64(r.IntN(1000))})
		}
		p.Location = append(p.Location, l)
	}
	for range n {
		s := &profile.Sample{Value: []int64{int64(r.IntN(10)), r.Int64N(1 << 40)}}
		for range r.IntN(90) {
			s.Location = append(s.Location, p.Location[r.IntN(len(p.Location))])
		}
		s.Label = map[string][]string{"thread_name": {"t" + string(rune('0'+r.IntN(10)))}, "state": {[]string{"sleep", "runnable", "gil"}[r.IntN(3)]}}
		s.NumLabel = map[string][]int64{"pid": {int64(r.IntN(1 << 20))}}
		p.Sample = append(p.Sample, s)
	}
	return p
}

// BenchmarkEncode compares the allocation of encode with the library's.
func BenchmarkEncode(b *testing.B) {
	p := randomProfile(rand.New(rand.NewPCG(5, 6)), 3000)
	b.Run("bprof", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encode(&bytes.Buffer{}, p)
		}
	})
	b.Run("pprof", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.WriteUncompressed(&bytes.Buffer{})
		}
	})
}
