package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bprof/bprof/pkg/export"
	"github.com/google/pprof/profile"
)

// DefaultSpoolMax bounds the Pyroscope sink's spool when no bound is given.
const DefaultSpoolMax = 64 << 20

// PyroscopeOptions configure a PyroscopeSink.
type PyroscopeOptions struct {
	URL      string // server base URL; requests go to URL/ingest
	SpoolDir string // where undelivered uploads wait, across restarts; "" keeps them in memory
	SpoolMax int64  // bound of the spool in bytes; DefaultSpoolMax if 0
	TenantID string // sent as X-Scope-OrgID when set
	Client   *http.Client
	Log      *slog.Logger
}

// PyroscopeSink uploads batches to a Pyroscope server's /ingest endpoint. A
// batch with a wall/nanoseconds type is sent as two uploads, CPU and wall,
// because the server files a whole pprof under `wall` when it has that type;
// memory types go as a third, shaped like a Go heap profile.
//
// Every upload goes through the spool and is delivered from one goroutine, in
// order. A 4xx answer (but 408 and 429) drops the upload; a 5xx, a transport
// error or a timeout is retried with exponential back-off capped at the
// batch's period, the later uploads waiting behind it.
type PyroscopeSink struct {
	opts  PyroscopeOptions
	base  *url.URL
	log   *slog.Logger
	spool *spool
	enc   export.Encoder

	closing chan struct{}
	done    chan struct{}
	once    sync.Once

	retries  atomic.Int64
	rejected atomic.Int64 // dropped on a 4xx
	sent     atomic.Int64
}

// NewPyroscopeSink checks the URL; nothing is read or sent before Start.
func NewPyroscopeSink(opts PyroscopeOptions) (*PyroscopeSink, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upload URL %q: want http(s)://host[:port][/prefix]", opts.URL)
	}
	if opts.SpoolMax == 0 {
		opts.SpoolMax = DefaultSpoolMax
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &PyroscopeSink{
		opts:    opts,
		base:    u,
		log:     opts.Log,
		spool:   newSpool(opts.SpoolDir, opts.SpoolMax),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

func (s *PyroscopeSink) String() string { return s.base.String() }

// Start reads what a previous run left in the spool and starts delivering.
func (s *PyroscopeSink) Start() error {
	bad, err := s.spool.load()
	if err != nil {
		return err
	}
	if bad > 0 {
		s.log.Warn("unreadable spool files removed", "count", bad)
	}
	if n, size := s.spool.len(); n > 0 {
		s.log.Info("spool loaded", "uploads", n, "bytes", size, "dir", s.opts.SpoolDir)
	}
	go s.deliver()
	return nil
}

// Counts are what the sink did since it started.
type Counts struct {
	Sent, Retries, Rejected, SpoolDropped int64
}

// Counts returns the sink's counters.
func (s *PyroscopeSink) Counts() Counts {
	s.spool.mu.Lock()
	d := s.spool.dropped
	s.spool.mu.Unlock()
	return Counts{Sent: s.sent.Load(), Retries: s.retries.Load(), Rejected: s.rejected.Load(), SpoolDropped: d}
}

// Send queues b's uploads.
func (s *PyroscopeSink) Send(b *Batch) error {
	ups, err := uploadsOf(b, &s.enc)
	if err != nil {
		return err
	}
	n, err := s.spool.push(ups...)
	if n > 0 {
		s.log.Warn("spool full: oldest uploads dropped", "dropped", n, "dropped_total", s.Counts().SpoolDropped, "max_bytes", s.opts.SpoolMax)
	}
	return err
}

// Close delivers what it can without retrying (each attempt bounded by its
// upload timeout) and stops. What is left stays in the spool directory for
// the next start, or is lost without one (logged).
func (s *PyroscopeSink) Close() error {
	s.once.Do(func() { close(s.closing) })
	<-s.done
	if n, size := s.spool.len(); n > 0 {
		if s.opts.SpoolDir != "" {
			s.log.Warn("uploads left in spool for the next start", "uploads", n, "bytes", size)
		} else {
			s.log.Warn("uploads lost: no spool directory", "uploads", n, "bytes", size)
		}
	}
	return nil
}

func (s *PyroscopeSink) deliver() {
	defer close(s.done)
	failures := 0
	for {
		seq, u, ok, err := s.spool.head()
		if err != nil {
			s.log.Warn("spooled upload dropped", "err", err)
			continue
		}
		if !ok {
			select {
			case <-s.spool.notify:
				continue
			case <-s.closing:
				return
			}
		}
		retry, err := s.post(u)
		if err == nil || !retry {
			s.spool.remove(seq)
			failures = 0
			if err != nil {
				s.log.Warn("upload rejected, dropped", "application", u.App, "pid", u.PID, "kind", u.Kind,
					"err", err, "rejected_total", s.rejected.Add(1))
			}
			continue
		}
		failures++
		s.log.Warn("upload failed, will retry", "application", u.App, "pid", u.PID, "kind", u.Kind,
			"err", err, "attempt", failures, "retries_total", s.retries.Add(1))
		select {
		case <-s.closing:
			return
		default:
		}
		select {
		case <-time.After(backoff(failures, time.Duration(u.PeriodNs))):
		case <-s.closing:
			// One last attempt of the head before stopping.
			if retry, err := s.post(u); err == nil || !retry {
				s.spool.remove(seq)
			}
			return
		}
	}
}

// backoff is the wait after the n-th failure in a row: doubling from a
// sixteenth of the period (at most a second), capped at the period.
func backoff(n int, period time.Duration) time.Duration {
	if period <= 0 {
		period = DefaultPeriod
	}
	d := min(period/16, time.Second)
	for i := 1; i < n && d < period; i++ {
		d *= 2
	}
	return min(d, period)
}

// post sends u once. retry says whether a failure is worth another attempt.
func (s *PyroscopeSink) post(u *upload) (retry bool, err error) {
	timeout := time.Duration(u.Timeout)
	if timeout <= 0 {
		timeout = DefaultUploadTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	q := url.Values{}
	q.Set("name", u.Name)
	q.Set("from", strconv.FormatInt(u.From, 10))
	q.Set("until", strconv.FormatInt(u.Until, 10))
	q.Set("format", "pprof")
	q.Set("spyName", "bprof")
	q.Set("sampleRate", "100")
	dest := s.base.JoinPath("ingest")
	dest.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dest.String(), bytes.NewReader(u.Body))
	if err != nil {
		return false, fmt.Errorf("make request: %w", err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if s.opts.TenantID != "" {
		req.Header.Set("X-Scope-OrgID", s.opts.TenantID)
	}
	t0 := time.Now()
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return true, fmt.Errorf("post %s: no answer within %s", dest.Redacted(), timeout)
		}
		return true, fmt.Errorf("post %s: %w", dest.Redacted(), err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		s.sent.Add(1)
		s.log.Info("batch shipped", "application", u.App, "pid", u.PID, "kind", u.Kind,
			"span", time.Duration(u.Until-u.From)*time.Second, "samples", u.Samples, "bytes", len(u.Body),
			"destination", s.base.Redacted(), "latency", time.Since(t0).Round(time.Millisecond))
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("post %s: %s: %s", dest.Redacted(), resp.Status, oneLine(msg))
	default:
		return false, fmt.Errorf("post %s: %s: %s", dest.Redacted(), resp.Status, oneLine(msg))
	}
}

func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}

// uploadsOf turns b into its uploads, encoded by enc: one for CPU, and one
// for wall when the profile has a wall/nanoseconds type.
func uploadsOf(b *Batch, enc *export.Encoder) ([]*upload, error) {
	name := seriesName(b)
	var ups []*upload
	views := []struct {
		kind, primary string
		types         []string
	}{
		{"cpu", "cpu", []string{"samples", "cpu"}},
		// Wall alone: a samples column there would hold on-CPU counts under
		// the wall profile type.
		{"wall", "wall", []string{"wall"}},
	}
	for _, v := range views {
		p := selectTypes(b.Profile, v.primary, v.types)
		if p == nil {
			continue
		}
		var body bytes.Buffer
		if err := enc.Encode(&body, p); err != nil {
			return nil, fmt.Errorf("encode %s profile: %w", v.kind, err)
		}
		ups = append(ups, &upload{
			App: b.ApplicationName, PID: b.PID, Kind: v.kind, Name: name,
			From: b.Start.Unix(), Until: b.End.Unix(), Samples: sampleCount(p),
			PeriodNs: int64(b.Period), Timeout: int64(b.UploadTimeout), Body: body.Bytes(),
		})
	}
	// Memory goes as Go heap profiles do: one pprof with the four types and
	// period space/bytes, which the server files as memory:alloc_objects,
	// memory:alloc_space, memory:inuse_objects and memory:inuse_space.
	if p := selectMemory(b.Profile, b.AllocSampleBytes); p != nil {
		var body bytes.Buffer
		if err := enc.Encode(&body, p); err != nil {
			return nil, fmt.Errorf("encode memory profile: %w", err)
		}
		ups = append(ups, &upload{
			App: b.ApplicationName, PID: b.PID, Kind: "memory", Name: name,
			From: b.Start.Unix(), Until: b.End.Unix(), Samples: int64(len(p.Sample)),
			PeriodNs: int64(b.Period), Timeout: int64(b.UploadTimeout), Body: body.Bytes(),
		})
	}
	if len(ups) == 0 {
		return nil, fmt.Errorf("batch of %s: no cpu or wall sample type", b.ApplicationName)
	}
	return ups, nil
}

// memoryTypes are the sample types of a memory profile (export.MemoryTypes).
var memoryTypes = []string{"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}

// selectMemory returns a copy of p with only the memory sample types and
// the samples with a memory value, as a Go heap profile: period type
// space/bytes, the period the mean sampling interval. Nil when p has no
// memory types or no memory sample.
func selectMemory(p *profile.Profile, period int64) *profile.Profile {
	idx := make([]int, len(memoryTypes))
	for i, t := range memoryTypes {
		if idx[i] = valueIndex(p, t); idx[i] < 0 {
			return nil
		}
	}
	q := p.Copy()
	q.SampleType = nil
	for _, i := range idx {
		q.SampleType = append(q.SampleType, p.SampleType[i])
	}
	samples := q.Sample[:0]
	for _, s := range q.Sample {
		vals := make([]int64, len(idx))
		any := false
		for j, i := range idx {
			vals[j] = s.Value[i]
			any = any || vals[j] != 0
		}
		if !any {
			continue
		}
		s.Value = vals
		samples = append(samples, s)
	}
	if len(samples) == 0 {
		return nil
	}
	q.Sample = samples
	q.DefaultSampleType = "inuse_space"
	q.PeriodType = &profile.ValueType{Type: "space", Unit: "bytes"}
	q.Period = period
	return q.Compact()
}

// selectTypes returns a copy of p keeping the sample types named in types, in
// p's order, and the samples whose primary value is not zero; nil when p has
// no primary type.
func selectTypes(p *profile.Profile, primary string, types []string) *profile.Profile {
	if valueIndex(p, primary) < 0 {
		return nil
	}
	q := p.Copy()
	var keep []int
	q.SampleType = nil
	for i, st := range p.SampleType {
		for _, t := range types {
			if st.Type == t {
				keep = append(keep, i)
				q.SampleType = append(q.SampleType, st)
			}
		}
	}
	pi := valueIndex(q, primary)
	samples := q.Sample[:0]
	for _, s := range q.Sample {
		vals := make([]int64, len(keep))
		for j, i := range keep {
			vals[j] = s.Value[i]
		}
		if vals[pi] == 0 {
			continue
		}
		s.Value = vals
		samples = append(samples, s)
	}
	q.Sample = samples
	for _, s := range q.Sample {
		stringLabels(s)
	}
	q.DefaultSampleType = primary
	if primary == "wall" {
		q.PeriodType = &profile.ValueType{Type: "wall", Unit: "nanoseconds"}
	}
	return q.Compact()
}

// stringLabels turns a sample's numeric labels (pid, thread_id) into string
// labels: Pyroscope keeps string labels as series labels a user can pick a
// thread by, and drops numeric ones.
func stringLabels(s *profile.Sample) {
	for k, vs := range s.NumLabel {
		if s.Label == nil {
			s.Label = map[string][]string{}
		}
		for _, v := range vs {
			s.Label[k] = append(s.Label[k], strconv.FormatInt(v, 10))
		}
	}
	s.NumLabel, s.NumUnit = nil, nil
}

// seriesName is app{k=v,...}: the user's labels, where the process runs
// (container_id, pod_uid, namespace), hostname and pid, sorted,
// with characters Pyroscope's name parser treats specially replaced.
func seriesName(b *Batch) string {
	tags := map[string]string{"hostname": b.Hostname, "pid": strconv.Itoa(b.PID)}
	for k, v := range b.labels() {
		tags[labelKey(k)] = labelValue(v)
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString(labelValue(b.ApplicationName))
	sb.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(k + "=" + labelValue(tags[k]))
	}
	sb.WriteByte('}')
	return sb.String()
}

// labelKey keeps [A-Za-z0-9_.] and makes the rest '_'; a key starting with a
// digit gets a leading '_'.
func labelKey(k string) string {
	k = strings.Map(func(r rune) rune {
		if r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, k)
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		k = "_" + k
	}
	return k
}

// labelValue replaces the characters that delimit Pyroscope names.
func labelValue(v string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '{', '}', ',', '=', '"', '\n':
			return '_'
		}
		return r
	}, v)
}
