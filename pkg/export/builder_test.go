package export

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/google/pprof/profile"
)

func TestBuilder(t *testing.T) {
	libc := &symbolize.Module{Path: "/usr/lib/libc.so.6", BuildID: "abcd", Start: 0x7f0000, Limit: 0x7f9000}
	kern := &symbolize.Module{Path: KernelMapping}
	py := []symbolize.Frame{
		{Kind: symbolize.KindKernel, Name: "do_syscall_64", Module: kern, Addr: 0xffff1},
		{Kind: symbolize.KindNative, Name: "write", Module: libc, Addr: 0x7f1234},
		{Kind: symbolize.KindPython, Name: "Ledger.reconcile", File: "/srv/app/ledger.py", Line: 42, StartLine: 40},
		{Kind: symbolize.KindPython, Name: "<module>", File: "/srv/app/main.py", Line: 3, StartLine: 1},
	}
	for _, tc := range []struct {
		name      string
		opts      Options
		add       func(b *Builder)
		wantTypes []string
		want      []int64 // values of the first sample
		samples   int
	}{
		{
			name: "cpu samples aggregate by stack and labels",
			opts: Options{Rate: 100},
			add: func(b *Builder) {
				b.AddCPU(py, Labels{PID: 7, TID: 8, ThreadName: "main"}, 1)
				b.AddCPU(py, Labels{PID: 7, TID: 8, ThreadName: "main"}, 2)
			},
			wantTypes: []string{"samples", "cpu"},
			want:      []int64{3, 30_000_000},
			samples:   1,
		},
		{
			name:      "another thread is another sample",
			opts:      Options{Rate: 100},
			add:       func(b *Builder) { b.AddCPU(py, Labels{PID: 7, TID: 8}, 1); b.AddCPU(py, Labels{PID: 7, TID: 9}, 1) },
			wantTypes: []string{"samples", "cpu"},
			want:      []int64{1, 10_000_000},
			samples:   2,
		},
		{
			name: "wall adds a third type; cpu samples count as wall too",
			opts: Options{Rate: 1000, Wall: true},
			add: func(b *Builder) {
				b.AddCPU(py, Labels{PID: 1, TID: 1}, 1)
				b.Add(py, Labels{PID: 1, TID: 1, State: "sleep"}, Values{Wall: 5e6})
			},
			wantTypes: []string{"samples", "cpu", "wall"},
			want:      []int64{1, 1_000_000, 1_000_000},
			samples:   2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder(tc.opts)
			tc.add(b)
			start := time.Unix(1700000000, 0)
			p := b.Profile(start, start.Add(10*time.Second))
			if err := p.CheckValid(); err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, st := range p.SampleType {
				types = append(types, st.Type)
			}
			if p.DefaultSampleType != "cpu" {
				t.Errorf("default sample type %q, want cpu", p.DefaultSampleType)
			}
			if strings.Join(types, ",") != strings.Join(tc.wantTypes, ",") {
				t.Errorf("sample types %v, want %v", types, tc.wantTypes)
			}
			if len(p.Sample) != tc.samples {
				t.Fatalf("%d samples, want %d", len(p.Sample), tc.samples)
			}
			s := p.Sample[0]
			for i, v := range tc.want {
				if s.Value[i] != v {
					t.Errorf("value %d = %d, want %d", i, s.Value[i], v)
				}
			}
			if s.NumLabel["pid"] == nil || s.NumLabel["thread_id"] == nil {
				t.Errorf("labels %v, want pid and thread_id", s.NumLabel)
			}
			// Frame kinds are told apart by mapping.
			kinds := map[string]string{}
			for _, loc := range s.Location {
				kinds[loc.Line[0].Function.Name] = loc.Mapping.File
			}
			if kinds["Ledger.reconcile"] != PythonMapping || kinds["do_syscall_64"] != KernelMapping || kinds["write"] != "/usr/lib/libc.so.6" {
				t.Errorf("mappings by function: %v", kinds)
			}
			if p.DurationNanos != 10e9 || p.TimeNanos != start.UnixNano() {
				t.Errorf("time span %d+%d", p.TimeNanos, p.DurationNanos)
			}
		})
	}
}

// TestWriteFileOpensInPprof: what WriteFile writes parses back, and go tool
// pprof reads it without a warning.
func TestWriteFileOpensInPprof(t *testing.T) {
	b := NewBuilder(Options{Rate: 100})
	b.AddCPU([]symbolize.Frame{{Kind: symbolize.KindPython, Name: "main", File: "a.py", Line: 3}, Pseudo("[truncated]")}, Labels{PID: 1, TID: 1, ThreadName: "t"}, 5)
	path := filepath.Join(t.TempDir(), "p.pb.gz")
	if err := WriteFile(path, b.Profile(time.Now(), time.Now().Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "pprof", "-top", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool pprof: %v: %s", err, stderr.String())
	}
	if strings.Contains(strings.ToLower(stderr.String()), "warn") || strings.Contains(stderr.String(), "fail") {
		t.Errorf("go tool pprof warned: %s", stderr.String())
	}
	if !strings.Contains(string(out), "main") {
		t.Errorf("pprof -top does not show main:\n%s", out)
	}
	if err := CheckWritable(filepath.Join(t.TempDir(), "missing", "x.pb.gz")); err == nil {
		t.Error("CheckWritable accepted a path in a missing directory")
	}
	var _ = profile.Parse
}

func TestAddLabels(t *testing.T) {
	b := NewBuilder(Options{Rate: 100})
	b.AddCPU([]symbolize.Frame{Pseudo("[a]")}, Labels{PID: 1, TID: 1, ThreadName: "t1"}, 1)
	b.AddCPU([]symbolize.Frame{Pseudo("[a]")}, Labels{PID: 2, TID: 2, ThreadName: "x"}, 1)
	p := b.Profile(time.Now(), time.Now())
	AddLabels(p, func(pid int) map[string]string {
		if pid == 1 {
			return map[string]string{"container_id": "c1", "thread_name": "not this"}
		}
		return nil
	})
	for _, s := range p.Sample {
		switch s.NumLabel["pid"][0] {
		case 1:
			if got := s.Label["container_id"]; len(got) != 1 || got[0] != "c1" {
				t.Errorf("pid 1 container_id %v, want [c1]", got)
			}
			if got := s.Label["thread_name"]; got[0] != "t1" {
				t.Errorf("pid 1 thread_name %v, want its own [t1]", got)
			}
		case 2:
			if len(s.Label["container_id"]) != 0 || s.Label["thread_name"][0] != "x" {
				t.Errorf("pid 2 labels %v, want its own only", s.Label)
			}
		}
	}
	if err := p.CheckValid(); err != nil {
		t.Error(err)
	}
}

// TestThreadNames: a thread has one name per profile, the last given or the
// one NameThreads sets, whatever its samples came with.
func TestThreadNames(t *testing.T) {
	stack := []symbolize.Frame{Pseudo("[a]")}
	for _, tc := range []struct {
		name    string
		add     func(b *Builder)
		rename  func(pid, tid int, name string) string
		want    map[int64]string // thread_name by thread_id
		samples int
	}{
		{
			name: "first samples under the OS name join the later ones",
			add: func(b *Builder) {
				b.AddCPU(stack, Labels{PID: 1, TID: 2, ThreadName: "python3"}, 1)
				b.Add(stack, Labels{PID: 1, TID: 2, ThreadName: "worker"}, Values{Wall: 5e6})
			},
			want:    map[int64]string{2: "worker"},
			samples: 1,
		},
		{
			name: "the name known at the end stands",
			add: func(b *Builder) {
				b.AddCPU(stack, Labels{PID: 1, TID: 2, ThreadName: "python3"}, 1)
				b.AddCPU(stack, Labels{PID: 1, TID: 3, ThreadName: "python3"}, 1)
			},
			rename: func(pid, tid int, name string) string {
				if tid == 2 {
					return "worker"
				}
				return name
			},
			want:    map[int64]string{2: "worker", 3: "python3"},
			samples: 2,
		},
		{
			name: "measured on-CPU time does not bring back an old name",
			add: func(b *Builder) {
				b.SetOnCPU(Labels{PID: 1, TID: 2, ThreadName: "python3"}, 1e6)
				b.AddRunqueue(Labels{PID: 1, TID: 2, ThreadName: "python3"}, 1e6)
				b.Add(stack, Labels{PID: 1, TID: 2, ThreadName: "worker", State: "sleep"}, Values{Wall: 5e6})
			},
			want:    map[int64]string{2: "worker"},
			samples: 3, // the sleep, [on-cpu: not sampled] and the runqueue's
		},
		{
			name:    "a thread never named has no label",
			add:     func(b *Builder) { b.AddCPU(stack, Labels{PID: 1, TID: 2}, 1) },
			want:    map[int64]string{2: ""},
			samples: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder(Options{Rate: 100, Wall: true})
			tc.add(b)
			if tc.rename != nil {
				b.NameThreads(tc.rename)
			}
			p := b.Profile(time.Now(), time.Now())
			if len(p.Sample) != tc.samples {
				t.Errorf("%d samples, want %d", len(p.Sample), tc.samples)
			}
			for _, s := range p.Sample {
				tid := s.NumLabel["thread_id"][0]
				got := strings.Join(s.Label["thread_name"], ",")
				if got != tc.want[tid] {
					t.Errorf("thread %d labelled %q, want %q", tid, got, tc.want[tid])
				}
			}
		})
	}
}
