package agent

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/google/pprof/profile"
)

// Batch is the profile of one target over one period.
type Batch struct {
	ApplicationName string
	PID             int
	Hostname        string
	Labels          map[string]string // the user's labels only
	Where           map[string]string // container_id, pod_uid, namespace: where the process runs (pkg/container)
	Start, End      time.Time
	Samples         int64 // sum of the samples/count values
	Final           bool  // the target's last batch (it left, or the agent stopped); none when that period had no sample
	Period          time.Duration
	UploadTimeout   time.Duration
	Profile         *profile.Profile
	// AllocSampleBytes is the mean number of bytes between two sampled
	// allocations when the profile has memory types (else 0).
	AllocSampleBytes int64
}

// Reserved label keys: the agent sets them, users may not. The last three
// only on batches of processes in a container or pod.
var reservedLabels = []string{"application_name", "hostname", "pid", "start", "end", "container_id", "pod_uid", "namespace"}

// AllLabels returns the user's labels plus application_name, hostname, pid,
// start and end (RFC 3339 with nanoseconds), and container_id, pod_uid and
// namespace when known.
func (b *Batch) AllLabels() map[string]string {
	m := b.labels()
	m["application_name"] = b.ApplicationName
	m["hostname"] = b.Hostname
	m["pid"] = strconv.Itoa(b.PID)
	m["start"] = b.Start.UTC().Format(time.RFC3339Nano)
	m["end"] = b.End.UTC().Format(time.RFC3339Nano)
	return m
}

// labels returns the user's labels with where the process runs.
func (b *Batch) labels() map[string]string {
	m := make(map[string]string, len(b.Labels)+len(b.Where)+5)
	for k, v := range b.Labels {
		m[k] = v
	}
	for k, v := range b.Where {
		m[k] = v
	}
	return m
}

// labelComments renders labels as sorted `key=value` pprof comments.
func labelComments(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// samplePID returns the pid label of s, or 0 when it has none.
func samplePID(s *profile.Sample) int {
	if v := s.NumLabel["pid"]; len(v) > 0 {
		return int(v[0])
	}
	if v := s.Label["pid"]; len(v) > 0 {
		if n, err := strconv.Atoi(v[0]); err == nil {
			return n
		}
	}
	return 0
}

// splitByPID splits p into one profile per pid label. The parts share p's
// locations; mergeParts makes them independent.
func splitByPID(p *profile.Profile) map[int]*profile.Profile {
	groups := map[int][]*profile.Sample{}
	for _, s := range p.Sample {
		pid := samplePID(s)
		groups[pid] = append(groups[pid], s)
	}
	out := make(map[int]*profile.Profile, len(groups))
	for pid, ss := range groups {
		out[pid] = &profile.Profile{
			SampleType:        p.SampleType,
			DefaultSampleType: p.DefaultSampleType,
			Sample:            ss,
			Mapping:           p.Mapping,
			Location:          p.Location,
			Function:          p.Function,
			DropFrames:        p.DropFrames,
			KeepFrames:        p.KeepFrames,
			TimeNanos:         p.TimeNanos,
			DurationNanos:     p.DurationNanos,
			PeriodType:        p.PeriodType,
			Period:            p.Period,
		}
	}
	return out
}

// mergeParts merges the parts of one target's period into one compact
// profile covering [start, end).
func mergeParts(parts []*profile.Profile, start, end time.Time) (*profile.Profile, error) {
	p, err := profile.Merge(parts)
	if err != nil {
		return nil, fmt.Errorf("merge profiles: %w", err)
	}
	p.TimeNanos = start.UnixNano()
	p.DurationNanos = end.Sub(start).Nanoseconds()
	return p, nil
}

// sampleCount sums the samples/count values of p (or the first value when p
// has no such type).
func sampleCount(p *profile.Profile) int64 {
	i := valueIndex(p, "samples")
	if i < 0 {
		i = 0
	}
	var n int64
	for _, s := range p.Sample {
		if i < len(s.Value) {
			n += s.Value[i]
		}
	}
	return n
}

func valueIndex(p *profile.Profile, typ string) int {
	for i, st := range p.SampleType {
		if st.Type == typ {
			return i
		}
	}
	return -1
}
