package agent

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseRequest(t *testing.T) {
	for _, tt := range []struct {
		line string
		want request
		err  string
	}{
		{`{"op":"stop"}`, request{Op: "stop"}, ""},
		{`{"op":"start"}`, request{Op: "start"}, ""},
		{`{"op":"start","application_name":"a","period":0.5,"upload_timeout":2,"labels":{"k":"v"},"extra":1}`,
			request{Op: "start", Target: Target{ApplicationName: "a", Period: 500 * time.Millisecond,
				UploadTimeout: 2 * time.Second, Labels: map[string]string{"k": "v"}}}, ""},
		{`{"op":"start","pid":12}`, request{Op: "start", PID: 12}, ""},
		{`{"op":"start","pid":-1}`, request{}, "not a process id"},
		{`{"op":"start","period":-3}`, request{}, "period"},
		{`{"op":"start","period":1e300}`, request{}, "period"},
		{`{"op":"start","upload_timeout":0.0001}`, request{}, "upload_timeout"},
		{`{"op":"start","labels":{"a=b":"c"}}`, request{}, "label"},
		{`{"op":"start","labels":{"k":3}}`, request{}, "decode"},
		{`{"op":"restart"}`, request{}, "op"},
		{`{"op":"stop"} {"op":"stop"}`, request{}, "more than one"},
		{``, request{}, "decode"},
		{`[]`, request{}, "decode"},
	} {
		got, err := parseRequest([]byte(tt.line))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseRequest(%s) error %v, want one about %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRequest(%s): %v", tt.line, err)
			continue
		}
		if got.Op != tt.want.Op || got.PID != tt.want.PID || got.Target.ApplicationName != tt.want.Target.ApplicationName ||
			got.Target.Period != tt.want.Target.Period || got.Target.UploadTimeout != tt.want.Target.UploadTimeout ||
			len(got.Target.Labels) != len(tt.want.Target.Labels) {
			t.Errorf("parseRequest(%s) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"stop"}`,
		`{"op":"start","application_name":"my-app","period":45,"upload_timeout":10,"labels":{"env":"prod"}}`,
		`{"op":"start","pid":1}`,
		`{"op":"start","period":"x"}`,
		`{"op":"start","labels":{"":""}}`,
		"\xff\xfe",
		`{"op":"start","period":NaN}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := parseRequest(line)
		if err != nil {
			return
		}
		if r.Op != "start" && r.Op != "stop" {
			t.Fatalf("accepted op %q", r.Op)
		}
		if r.PID < 0 || r.Target.Period < 0 || r.Target.UploadTimeout < 0 {
			t.Fatalf("accepted negative values: %+v", r)
		}
		if err := checkLabels(r.Target.Labels); err != nil {
			t.Fatalf("accepted bad labels: %v", err)
		}
	})
}

func FuzzReadLine(f *testing.F) {
	for _, s := range []string{"{\"op\":\"stop\"}\n", "a\nb\n", "no newline", "", strings.Repeat("x", 5000) + "\n"} {
		f.Add([]byte(s), 100)
	}
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		if limit <= 0 || limit > 1<<20 {
			return
		}
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		var total int
		for {
			line, err := readLine(r, limit)
			if err != nil {
				break
			}
			if len(line) > limit {
				t.Fatalf("line of %d bytes, limit %d", len(line), limit)
			}
			total += len(line)
			if total > len(data) {
				t.Fatalf("read %d bytes from %d", total, len(data))
			}
			parseRequest(line)
		}
	})
}
