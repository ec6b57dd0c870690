package symbolize

import "testing"

func TestGILWait(t *testing.T) {
	k := func(n string) Frame { return Frame{Kind: KindKernel, Name: n} }
	n := func(n string) Frame { return Frame{Kind: KindNative, Name: n} }
	py := func(n string) Frame { return Frame{Kind: KindPython, Name: n} }
	for _, tt := range []struct {
		name   string
		frames []Frame
		want   bool
	}{
		{"reacquire after sleep", []Frame{k("schedule"), k("futex_wait"), n("pthread_cond_timedwait"), n("take_gil"), n("PyEval_RestoreThread"), n("time_sleep"), py("sleeper")}, true},
		{"stripped: exported entry only", []Frame{k("schedule"), n("libc.so.6+0x8f2d1"), n("python3.13+0x1b2c3"), n("PyEval_RestoreThread"), py("f")}, true},
		{"LTO clone", []Frame{n("take_gil.lto_priv.0"), py("f")}, true},
		{"eval breaker 3.12", []Frame{k("schedule"), n("take_gil"), n("_Py_HandlePending"), n("_PyEval_EvalFrameDefault"), py("busy")}, true},
		{"plain sleep", []Frame{k("schedule"), k("do_nanosleep"), n("clock_nanosleep"), n("pysleep"), n("time_sleep"), py("sleeper")}, false},
		{"GIL function root-ward of Python", []Frame{k("schedule"), n("read"), py("reader"), n("PyEval_RestoreThread")}, false},
		{"empty", nil, false},
	} {
		if got := GILWait(tt.frames); got != tt.want {
			t.Errorf("%s: GILWait = %v, want %v", tt.name, got, tt.want)
		}
	}
}
