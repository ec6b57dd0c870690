package process

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"
)

// addFile adds the first maxLines lines of a file of this machine as a
// seed, when it can be read.
func addFile(f *testing.F, path string, maxLines int) {
	fd, err := os.Open(path)
	if err != nil {
		return
	}
	defer fd.Close()
	var b strings.Builder
	sc := bufio.NewScanner(fd)
	for i := 0; i < maxLines && sc.Scan(); i++ {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	f.Add(b.String())
}

func FuzzParseMaps(f *testing.F) {
	f.Add(sampleMaps)
	addFile(f, "/proc/self/maps", 200)
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := ParseMaps(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.End < m.Start {
				t.Fatalf("mapping %+v ends before it starts", m)
			}
			_, _, _ = m.Executable(), m.Anonymous(), m.Deleted()
		}
	})
}

func FuzzParseKallsyms(f *testing.F) {
	f.Add(sampleKallsyms)
	addFile(f, "/proc/kallsyms", 100)
	f.Fuzz(func(t *testing.T, in string) {
		k, err := ParseKallsyms(strings.NewReader(in))
		if err != nil {
			return
		}
		lo, hi := k.Bounds()
		for _, a := range []uint64{0, lo, lo + 1, hi, hi + 1, ^uint64(0)} {
			if name, off, _, ok := k.Lookup(a); ok && (name == "" || off > a-lo) {
				t.Fatalf("Lookup(%#x) = %q+%#x", a, name, off)
			}
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add(sampleStatus)
	addFile(f, "/proc/self/status", 100)
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = ParseStatus(strings.NewReader(in))
	})
}

func FuzzStat(f *testing.F) {
	f.Add([]byte("123 (a) b (c) ) R 1 100 100 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0\n"))
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = ParseStat(in)
	})
}

func FuzzParseBinary(f *testing.F) {
	seed, err := os.ReadFile("testdata/tiny.elf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := ParseBinary(bytes.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for _, s := range b.Sections {
			if _, ok := b.Section(s.Name); !ok {
				t.Fatalf("Section(%q) not found", s.Name)
			}
			_, _ = b.ReadSection(bytes.NewReader(in), s.Name)
		}
		for _, a := range []uint64{0, 0x1000, 0x401000, ^uint64(0)} {
			if name, start, ok := b.Symbol(a); ok && (name == "" || start > a) {
				t.Fatalf("Symbol(%#x) = %q at %#x", a, name, start)
			}
		}
		_, _ = b.Lookup("main")
		_, _ = b.Bias(Mapping{Start: 0x555555554000, End: 0x555555556000, Offset: 0x1000, Perms: "r-xp"})
		_ = b.ID.String()
	})
}

func FuzzParseKernelStack(f *testing.F) {
	f.Add([]byte("[<0>] do_nanosleep+0x6f/0x1a0\n[<0>] hrtimer_nanosleep+0xa5/0x150\n[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e\n"))
	f.Add([]byte("[<0>] pipe_read+0x31f/0x490 [some_module]\n"))
	f.Add([]byte("garbage\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		names, _ := ParseKernelStack(b)
		for _, n := range names {
			if n == "" {
				t.Fatal("empty frame name")
			}
		}
	})
}

func FuzzParseSchedstat(f *testing.F) {
	for _, s := range []string{"4692723062 2083724914 5961\n", "0 0 0", "", "x 1 2", "18446744073709551616 0 0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseSchedstat(b)
	})
}
