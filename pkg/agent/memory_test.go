package agent

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// TestUploadsMemory: a batch with memory types is three uploads: CPU, wall,
// and memory shaped like a Go heap profile (the four types, period type
// space/bytes, the sampling interval as period), without the CPU samples. A batch without memory types has no memory upload.
func TestUploadsMemory(t *testing.T) {
	fn := &profile.Function{ID: 1, Name: "f"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	types := []string{"samples", "cpu", "wall", "alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}
	units := []string{"count", "nanoseconds", "nanoseconds", "count", "bytes", "count", "bytes"}
	p := &profile.Profile{
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		Location:   []*profile.Location{loc},
		Function:   []*profile.Function{fn},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{loc}, Value: []int64{1, 10_000_000, 10_000_000, 0, 0, 0, 0}},
			{Location: []*profile.Location{loc}, Value: []int64{0, 0, 0, 17, 524288, 0, 0}},
			{Location: []*profile.Location{loc}, Value: []int64{0, 0, 0, 0, 0, 5, 1 << 20}},
		},
	}
	for i, typ := range types {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: typ, Unit: units[i]})
	}
	b := &Batch{ApplicationName: "app", PID: 7, Hostname: "h", Start: time.Unix(100, 0), End: time.Unix(110, 0),
		Period: 10 * time.Second, UploadTimeout: time.Second, Profile: p, AllocSampleBytes: 512 << 10}
	ups, err := uploadsOf(b)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, u := range ups {
		kinds = append(kinds, u.Kind)
	}
	if len(ups) != 3 || ups[2].Kind != "memory" {
		t.Fatalf("uploads %v, want cpu, wall, memory", kinds)
	}
	m, err := profile.Parse(bytes.NewReader(ups[2].Body))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range m.SampleType {
		got = append(got, st.Type+"/"+st.Unit)
	}
	want := "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes"
	if g := join(got); g != want {
		t.Errorf("memory upload types %s, want %s", g, want)
	}
	if m.PeriodType == nil || m.PeriodType.Type != "space" || m.PeriodType.Unit != "bytes" || m.Period != 512<<10 {
		t.Errorf("memory upload period %v %d, want space/bytes 524288", m.PeriodType, m.Period)
	}
	var alloc, inuse int64
	for _, s := range m.Sample {
		alloc += s.Value[1]
		inuse += s.Value[3]
	}
	if alloc != 524288 || inuse != 1<<20 {
		t.Errorf("memory upload: alloc_space %d, inuse_space %d; want 524288, 1048576", alloc, inuse)
	}
	cpu, err := profile.Parse(bytes.NewReader(ups[0].Body))
	if err != nil {
		t.Fatal(err)
	}
	if len(cpu.Sample) != 1 || len(cpu.SampleType) != 2 {
		t.Errorf("cpu upload: %d samples, %d types; want the CPU sample only, samples and cpu", len(cpu.Sample), len(cpu.SampleType))
	}

	// Without memory types: no memory upload.
	p2 := p.Copy()
	p2.SampleType = p2.SampleType[:3]
	for _, s := range p2.Sample {
		s.Value = s.Value[:3]
	}
	b.Profile = p2
	if ups, err := uploadsOf(b); err != nil || len(ups) != 2 {
		t.Errorf("without memory types: %d uploads (%v), want 2", len(ups), err)
	}
}

func join(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}
