package flamegraph

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParseFolded(f *testing.F) {
	for _, seed := range []string{
		"a;b;c 1\n", "main (app.py:3);x_[k] 10\n[lost] 2\n", "# c\n\na 0\n", "a;;b 1", "a 99999999999999999999", " 1", "a;b\t3\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParseFolded(strings.NewReader(in))
		if err != nil {
			return
		}
		if err := p.CheckValid(); err != nil {
			t.Fatalf("invalid profile from %q: %v", in, err)
		}
		if len(p.Sample) == 0 {
			return
		}
		s, err := Extract(p, Options{})
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteFolded(&b, s); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseFolded(&b); err != nil {
			t.Fatalf("folded output does not parse back: %v\n%s", err, b.String())
		}
	})
}

func FuzzReadBytes(f *testing.F) {
	var gz, raw bytes.Buffer
	p := smallProfile(f)
	p.Write(&gz)
	p.WriteUncompressed(&raw)
	f.Add(gz.Bytes())
	f.Add(raw.Bytes())
	f.Add([]byte("a;b 1\n"))
	f.Add([]byte("--- contention:\ncycles/second=1\n"))
	f.Add([]byte("heap profile: 1: 2 [3: 4] @ heap/1048576\n1: 2 [3: 4] @ 0x1 0x2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadBytes(data)
		if err != nil {
			return
		}
		s, err := Extract(p, Options{})
		if err != nil {
			return
		}
		var b bytes.Buffer
		for _, fm := range []Format{SVG, Folded, Speedscope} {
			b.Reset()
			if err := Write(&b, s, Config{Format: fm, MinWidth: MinWidth{Value: 1, Pixels: true}}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
