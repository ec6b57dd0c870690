package unwind

import (
	"os"
	"testing"
)

// BenchmarkParse parses real files of this machine, the interpreters first.
func BenchmarkParse(b *testing.B) {
	for _, f := range realFiles() {
		if _, err := os.Stat(f.path); err != nil {
			continue
		}
		b.Run(f.name, func(b *testing.B) {
			ef := f.open(b)
			var rows int
			b.ReportAllocs()
			for b.Loop() {
				tab, err := Parse(ef)
				if err != nil {
					b.Fatal(err)
				}
				rows = len(tab.Rows)
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
