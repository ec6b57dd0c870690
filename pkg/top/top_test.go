package top

import (
	"bytes"
	"testing"
	"time"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/google/pprof/profile"
)

func py(name string, line int64) symbolize.Frame {
	return symbolize.Frame{Kind: symbolize.KindPython, Name: name, File: "app.py", Line: line}
}

func native(name string) symbolize.Frame {
	return symbolize.Frame{Kind: symbolize.KindNative, Name: name, Module: &symbolize.Module{Path: "/usr/lib/libpython3.12.so"}, Addr: 0x1000}
}

// profileOf builds a profile the way a session does, written and read back.
func profileOf(t *testing.T, add func(b *export.Builder)) *profile.Profile {
	t.Helper()
	b := export.NewBuilder(export.Options{Rate: 100})
	add(b)
	now := time.Now()
	var buf bytes.Buffer
	if err := b.Profile(now.Add(-time.Second), now).Write(&buf); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSummarize(t *testing.T) {
	p := profileOf(t, func(b *export.Builder) {
		// Leaf first. 6 samples: hash() calling into C, on thread 1.
		b.AddCPU([]symbolize.Frame{native("sha256_update"), native("_PyEval_EvalFrameDefault"), py("hash", 12), py("handle", 30), py("main", 40)},
			export.Labels{PID: 1, TID: 1, ThreadName: "main"}, 6)
		// 3 samples: handle() itself, thread 1.
		b.AddCPU([]symbolize.Frame{py("handle", 31), py("main", 40)}, export.Labels{PID: 1, TID: 1, ThreadName: "main"}, 3)
		// 1 sample of a native-only thread: its leaf owns it.
		b.AddCPU([]symbolize.Frame{native("epoll_wait"), native("start_thread")}, export.Labels{PID: 1, TID: 2, ThreadName: "io"}, 1)
	})
	const ms10 = int64(10 * time.Millisecond)
	for _, tc := range []struct {
		name    string
		opt     Options
		total   int64
		threads int
		want    map[string][2]int64 // own, total in samples
		where   map[string]string
	}{
		{"all", Options{SampleType: "cpu"}, 10, 2,
			map[string][2]int64{"hash": {6, 6}, "handle": {3, 9}, "main": {0, 9}, "epoll_wait": {1, 1}, "start_thread": {0, 1}},
			map[string]string{"hash": "app.py:12", "handle": "app.py:31", "main": "app.py:40", "epoll_wait": "libpython3.12.so"}},
		{"thread 2", Options{SampleType: "cpu", TID: 2}, 1, 1,
			map[string][2]int64{"epoll_wait": {1, 1}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := Summarize(p, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if in.Total != tc.total*ms10 || len(in.Threads) != tc.threads || in.Samples != tc.total {
				t.Errorf("total %d, samples %d, threads %v; want %d samples of 10 ms, %d threads", in.Total, in.Samples, in.Threads, tc.total, tc.threads)
			}
			got := map[string][2]int64{}
			for _, f := range in.Funcs {
				got[f.Name] = [2]int64{f.Own / ms10, f.Tot / ms10}
				if w, ok := tc.where[f.Name]; ok && f.Where() != w {
					t.Errorf("%s at %q, want %q", f.Name, f.Where(), w)
				}
			}
			for name, w := range tc.want {
				if got[name] != w {
					t.Errorf("%s: own, total %v; want %v", name, got[name], w)
				}
			}
			if _, ok := got["sha256_update"]; ok && tc.opt.TID == 0 {
				t.Error("a native frame under a Python one has a row of its own")
			}
		})
	}
	if _, err := Summarize(p, Options{SampleType: "wall"}); err == nil {
		t.Error("no error for a missing sample type")
	}

	tab := NewTable()
	in, _ := Summarize(p, Options{SampleType: "cpu"})
	tab.Add(in)
	tab.Add(in)
	rows := tab.Rows(ByTotal, 2)
	if len(rows) != 2 || rows[0].TotPct != 90 || rows[0].TotSum != 18*ms10 {
		t.Errorf("rows by total: %+v", rows)
	}
	if r := tab.Rows(ByOwn, 1); r[0].Name != "hash" || r[0].OwnPct != 60 {
		t.Errorf("top row by own: %+v", r)
	}
}
