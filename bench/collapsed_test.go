package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// Lines as austin 3.7 writes them with -s (checked on this machine), plus a
// file name holding a colon.
const austinSample = `# austin: 3.7.0
# interval: 10000
# mode: cpu

P7;T0:7;/w/shares.py:<module>:40;/w/shares.py:work_a:17 10000
P7;T0:7;/w/shares.py:<module>:40;/w/shares.py:work_a:17;/w/shares.py:work_a:17 10000
P7;T0:7;/w/shares.py:<module>:40;/w/shares.py:work_b:23 20000
P7;T0:7;C:/odd:path.py:<module>:1;C:/odd:path.py:work_c:2 10000

# duration: 5000
`

func TestReadAustin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "austin.out")
	if err := os.WriteFile(path, []byte(austinSample), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readAustin(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.samples != 4 || got.total != 50000 {
		t.Errorf("samples %d, total %g; want 4, 50000", got.samples, got.total)
	}
	// work_a recurses in one sample: counted once.
	for fn, want := range map[string]float64{"work_a": 0.4, "work_b": 0.4, "work_c": 0.2, "<module>": 1} {
		if s := got.share(fn); math.Abs(s-want) > 1e-9 {
			t.Errorf("share(%s) = %g, want %g", fn, s, want)
		}
	}
}

func TestReadAustinRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "austin.out")
	os.WriteFile(path, []byte("P1;T0:1;f.py:g:1 notanumber\n"), 0o644)
	if _, err := readAustin(path); err == nil {
		t.Error("readAustin accepted a line without a metric")
	}
}

func TestMedianAndQuartiles(t *testing.T) {
	xs := []float64{5, 1, 3, 2, 4}
	if m := median(xs); m != 3 {
		t.Errorf("median = %g, want 3", m)
	}
	if m := median([]float64{1, 2, 3, 4}); m != 2.5 {
		t.Errorf("median of an even count = %g, want 2.5", m)
	}
	if q1, q3 := quartiles(xs); q1 != 2 || q3 != 4 {
		t.Errorf("quartiles = %g, %g; want 2, 4", q1, q3)
	}
	if lo, hi := spread(xs); lo != 1 || hi != 5 {
		t.Errorf("spread = %g–%g, want 1–5", lo, hi)
	}
}
