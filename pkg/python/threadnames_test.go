package python

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
)

// namesReport is the JSON line testdata/python/thread_names.py prints.
type namesReport struct {
	Version [3]int `json:"version"`
	Unknown uint64 `json:"unknown"`
	Threads map[string]struct {
		Name     string `json:"name"`
		NativeID uint64 `json:"native_id"`
	} `json:"threads"`
}

// chrootDir is where .ci/setup-chroots.sh builds Debian roots (trixie's
// 3.13, sid's 3.14).
func chrootDir() string {
	if d := os.Getenv("BPROF_CHROOTS"); d != "" {
		return d
	}
	return "/var/cache/bprof/chroots"
}

// namesInterpreter is an interpreter to start, maybe inside a chroot.
type namesInterpreter struct {
	name   string
	path   string // inside the chroot, if any
	chroot string
}

// allInterpreters is findInterpreters plus the Debian chroots' python3.
func allInterpreters(t *testing.T) []namesInterpreter {
	t.Helper()
	var out []namesInterpreter
	for _, py := range findInterpreters(t) {
		out = append(out, namesInterpreter{name: py.path, path: py.path})
	}
	for _, suite := range []string{"trixie", "sid"} {
		root := filepath.Join(chrootDir(), suite)
		if _, err := os.Stat(filepath.Join(root, "usr/bin/python3")); err != nil {
			testenv.Skip(t, "no Debian "+suite+" chroot in "+chrootDir()+": run .ci/setup-chroots.sh")
			continue
		}
		out = append(out, namesInterpreter{name: suite, path: "/usr/bin/python3", chroot: root})
	}
	if len(out) == 0 {
		testenv.Skip(t, "no CPython 3.7+ interpreter found")
	}
	return out
}

// kind names the build: pyenv, debian (/usr/bin) or the chroot's suite.
func (py namesInterpreter) kind() string {
	switch {
	case py.chroot != "":
		return filepath.Base(py.chroot)
	case strings.HasPrefix(py.path, "/usr/bin/"):
		return "debian"
	}
	return "pyenv"
}

// startNames runs thread_names.py with extra more threads and waits for
// "ready". The script exits when the test ends (its stdin closes).
func startNames(t *testing.T, py namesInterpreter, extra int) (int, *namesReport) {
	t.Helper()
	script, err := filepath.Abs("../../testdata/python/thread_names.py")
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{py.path, script, strconv.Itoa(extra)}
	if py.chroot != "" {
		src, err := os.ReadFile(script)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(py.chroot, "tmp", "bprof-test")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "thread_names.py"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		// chroot execs Python in the same process.
		argv = []string{"chroot", py.chroot, py.path, "/tmp/bprof-test/thread_names.py", strconv.Itoa(extra)}
	}
	p := testenv.Start(t, argv[0], argv[1:]...)
	line, err := p.Stdout.ReadBytes('\n')
	if err != nil {
		t.Fatalf("%s: no report: %v", py.name, err)
	}
	var r namesReport
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("%s: decode report %q: %v", py.name, line, err)
	}
	if ready, err := p.Stdout.ReadString('\n'); err != nil || strings.TrimSpace(ready) != "ready" {
		t.Fatalf("%s: want ready, got %q (%v)", py.name, ready, err)
	}
	return p.Cmd.Process.Pid, &r
}

// TestThreadNames reads the names of thread_names.py's threads on every
// interpreter on the machine and checks them against what threading says.
func TestThreadNames(t *testing.T) {
	for _, py := range allInterpreters(t) {
		t.Run(py.name, func(t *testing.T) {
			pid, r := startNames(t, py, 2)
			mem := openProcMem(t, pid)
			in := findInProcess(t, pid, mem)
			if in.Version.Minor != r.Version[1] {
				t.Fatalf("Find says Python %s, the script says %v", in.Version, r.Version)
			}
			rec := &recordingMem{mem: mem}
			names, err := in.ThreadNames(rec)
			if err != nil {
				t.Fatalf("ThreadNames: %v (read %v)", err, names)
			}
			if *updateMemory {
				rec.write(t, in, py.kind())
			}
			t.Logf("Python %s: %v", in.Version, names)

			want := map[uint64]string{}
			for id, th := range r.Threads {
				ident, err := strconv.ParseUint(id, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				want[ident] = th.Name
			}
			for _, name := range []string{"MainThread", "worker-a", "renamed", "dict-seen",
				"unicode-名前-\U0001f40d", "extra-0", "extra-1", "ThreadPoolExecutor-0_0"} {
				if !hasValue(want, name) {
					t.Errorf("the script reports no thread %q: %v", name, want)
				}
			}
			for ident, name := range want {
				if got, ok := names[ident]; !ok || got != name {
					t.Errorf("thread %#x: name %q (found %v), want %q", ident, got, ok, name)
				}
			}
			for ident, name := range names {
				if _, ok := want[ident]; !ok {
					t.Errorf("thread %#x named %q, which threading does not list", ident, name)
				}
			}
			if _, known := r.Threads[strconv.FormatUint(r.Unknown, 10)]; !known {
				if name, ok := names[r.Unknown]; ok {
					t.Errorf("thread %#x, started by _thread, named %q", r.Unknown, name)
				}
			}

			// The idents are the thread states' thread_id; 3.11+ join the TID.
			threads, err := in.Threads(mem)
			if err != nil {
				t.Fatalf("Threads: %v", err)
			}
			byID := map[uint64]Thread{}
			for _, th := range threads {
				byID[th.ThreadID] = th
			}
			for id, th := range r.Threads {
				ident, _ := strconv.ParseUint(id, 10, 64)
				ts, ok := byID[ident]
				if !ok {
					t.Errorf("thread %q: no thread state with thread_id %#x", th.Name, ident)
					continue
				}
				if in.Offsets.TstateNativeThreadID != Absent && ts.NativeID != th.NativeID {
					t.Errorf("thread %q: thread state's TID %d, threading says %d", th.Name, ts.NativeID, th.NativeID)
				}
			}
		})
	}
}

func hasValue(m map[uint64]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

// countingMem counts the reads made through it.
type countingMem struct {
	mem   *procMem
	reads int
}

func (c *countingMem) ReadAt(b []byte, off int64) (int, error) {
	c.reads++
	return c.mem.ReadAt(b, off)
}

// TestThreadNamesCost reads the names of 100 threads on one interpreter of
// each dict and instance layout, and bounds the number of reads, which is
// what the cost is made of (the time is logged: it depends on the machine's
// load).
func TestThreadNamesCost(t *testing.T) {
	const threads = 100
	done := map[InstanceDictKind]bool{}
	for _, py := range allInterpreters(t) {
		if py.chroot != "" {
			continue
		}
		v, err := VersionFromFileName(py.path)
		if err != nil {
			continue
		}
		o, err := OffsetsFor(v)
		if err != nil || done[o.InstanceDict] {
			continue
		}
		done[o.InstanceDict] = true
		t.Run(py.name, func(t *testing.T) {
			pid, r := startNames(t, py, threads)
			mem := &countingMem{mem: openProcMem(t, pid)}
			in := findInProcess(t, pid, mem.mem)
			names, err := in.ThreadNames(mem)
			if err != nil {
				t.Fatalf("ThreadNames: %v", err)
			}
			reads := mem.reads
			// The best of a few: the machine may be busy with other tests.
			elapsed := time.Duration(1 << 62)
			for range 5 {
				start := time.Now()
				if _, err := in.ThreadNames(mem.mem); err != nil {
					t.Fatalf("ThreadNames: %v", err)
				}
				elapsed = min(elapsed, time.Since(start))
			}
			if len(names) != len(r.Threads) {
				t.Errorf("%d names, threading lists %d threads", len(names), len(r.Threads))
			}
			t.Logf("Python %s: %d threads named in %d reads, %v", in.Version, len(names), reads, elapsed)
			if limit := 200 + 7*len(r.Threads); reads > limit {
				t.Errorf("%d reads for %d threads, want at most %d", reads, len(r.Threads), limit)
			}
		})
	}
}

var updateMemory = flag.Bool("update-memory", false,
	"write testdata/memory/*.bin: what TestThreadNames reads of each target, the seeds of FuzzThreadNames")

// recordingMem keeps every read made through it.
type recordingMem struct {
	mem  io.ReaderAt
	segs []memSegment
}

type memSegment struct {
	addr uint64
	data []byte
}

func (m *recordingMem) ReadAt(b []byte, off int64) (int, error) {
	n, err := m.mem.ReadAt(b, off)
	if n > 0 {
		m.segs = append(m.segs, memSegment{uint64(off), bytes.Clone(b[:n])})
	}
	return n, err
}

// write saves the reads as testdata/memory/KIND-3.MINOR.bin.
func (m *recordingMem) write(t *testing.T, in *Interpreter, kind string) {
	t.Helper()
	path := filepath.Join("testdata", "memory", fmt.Sprintf("%s-3.%d.bin", kind, in.Version.Minor))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, encodeMemory(in.Version, in.RuntimeAddr, m.segs), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// A memory image is "bprofmem", the version (3 bytes) and a zero byte, the
// _PyRuntime address, then segments: address (8 bytes), length (4 bytes)
// and the bytes. Numbers are little-endian.
const memoryMagic = "bprofmem"

func encodeMemory(v Version, runtime uint64, segs []memSegment) []byte {
	b := []byte(memoryMagic)
	b = append(b, byte(v.Major), byte(v.Minor), byte(v.Patch), 0)
	b = binary.LittleEndian.AppendUint64(b, runtime)
	for _, s := range segs {
		b = binary.LittleEndian.AppendUint64(b, s.addr)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.data)))
		b = append(b, s.data...)
	}
	return b
}

// imageMem is a memory image: sorted, non-overlapping extents.
type imageMem struct{ extents []memSegment }

// decodeMemory reads a memory image of at most 1 MiB. Where segments
// overlap the first one read wins; touching segments merge, as in a process.
func decodeMemory(b []byte) (v Version, runtime uint64, mem *imageMem, err error) {
	if len(b) < len(memoryMagic)+12 || len(b) > 1<<20 || string(b[:len(memoryMagic)]) != memoryMagic {
		return v, 0, nil, errors.New("not a memory image")
	}
	b = b[len(memoryMagic):]
	v = Version{int(b[0]), int(b[1]), int(b[2])}
	runtime = binary.LittleEndian.Uint64(b[4:])
	b = b[12:]
	var segs []memSegment
	for len(b) > 0 {
		if len(b) < 12 {
			break
		}
		addr, n := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint32(b[8:])
		b = b[12:]
		if uint64(n) > uint64(len(b)) {
			n = uint32(len(b)) // a mutated length: keep what is there
		}
		if addr+uint64(n) < addr {
			return v, 0, nil, errors.New("segment wraps around")
		}
		if n > 0 {
			segs = append(segs, memSegment{addr, b[:n]})
		}
		b = b[n:]
	}
	// By address, then in the order read.
	idx := make([]int, len(segs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := cmp.Compare(segs[a].addr, segs[b].addr); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	sorted := make([]memSegment, len(segs))
	for i, j := range idx {
		sorted[i] = segs[j]
	}
	segs = sorted
	mem = &imageMem{}
	for _, s := range segs {
		n := len(mem.extents)
		if n == 0 {
			mem.extents = append(mem.extents, memSegment{s.addr, bytes.Clone(s.data)})
			continue
		}
		last := &mem.extents[n-1]
		end := last.addr + uint64(len(last.data))
		switch {
		case s.addr > end:
			mem.extents = append(mem.extents, memSegment{s.addr, bytes.Clone(s.data)})
		case s.addr+uint64(len(s.data)) > end:
			last.data = append(last.data, s.data[end-s.addr:]...)
		}
	}
	return v, runtime, mem, nil
}

var errNotInImage = errors.New("address not in the memory image")

func (m *imageMem) ReadAt(b []byte, off int64) (int, error) {
	a := uint64(off)
	i := sort.Search(len(m.extents), func(i int) bool {
		e := m.extents[i]
		return e.addr+uint64(len(e.data)) > a
	})
	if i == len(m.extents) || m.extents[i].addr > a {
		return 0, errNotInImage
	}
	n := copy(b, m.extents[i].data[a-m.extents[i].addr:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// TestThreadNamesImages replays what TestThreadNames read of each
// interpreter (testdata/memory) and checks the names, without a process.
func TestThreadNamesImages(t *testing.T) {
	files, _ := filepath.Glob("testdata/memory/*.bin")
	if len(files) == 0 {
		t.Fatal("no memory images in testdata/memory")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			v, runtime, mem, err := decodeMemory(b)
			if err != nil {
				t.Fatal(err)
			}
			o, err := OffsetsFor(v)
			if err != nil {
				t.Fatal(err)
			}
			in := &Interpreter{Version: v, RuntimeAddr: runtime, Offsets: o}
			names, err := in.ThreadNames(mem)
			if err != nil {
				t.Fatalf("ThreadNames: %v", err)
			}
			for _, name := range []string{"MainThread", "worker-a", "renamed", "dict-seen",
				"unicode-名前-\U0001f40d", "extra-0", "extra-1", "ThreadPoolExecutor-0_0"} {
				if !hasValue(names, name) {
					t.Errorf("no thread %q in %v", name, names)
				}
			}
			if len(names) != 8 {
				t.Errorf("%d names, want 8: %v", len(names), names)
			}
		})
	}
}

// TestReadLong decodes ints in both layouts: ob_size (≤3.11) and lv_tag
// (3.12+), zero, one to three 30-bit digits, and refuses negative and
// over-64-bit values.
func TestReadLong(t *testing.T) {
	long := func(tagged bool, sign int, digits ...uint32) []byte {
		b := make([]byte, 24, 40)
		n := uint64(len(digits))
		switch {
		case tagged:
			binary.LittleEndian.PutUint64(b[16:], n<<3|uint64(sign))
		case sign == 2:
			binary.LittleEndian.PutUint64(b[16:], -n)
		default:
			binary.LittleEndian.PutUint64(b[16:], n)
		}
		for _, d := range digits {
			b = binary.LittleEndian.AppendUint32(b, d)
		}
		return append(b, make([]byte, 40-len(b))...)
	}
	const ident = 0x7f3a_1234_5640 // a typical pthread_t: 47 bits, two digits
	for _, minor := range []int{11, 12} {
		o, err := OffsetsFor(Version{3, minor, 0})
		if err != nil {
			t.Fatal(err)
		}
		tagged := o.LongTagged
		zeroSign := 0
		if tagged {
			zeroSign = 1
		}
		for _, c := range []struct {
			mem  []byte
			want uint64
			err  bool
		}{
			{mem: long(tagged, zeroSign), want: 0},
			{mem: long(tagged, 0, 7), want: 7},
			{mem: long(tagged, 0, ident&(1<<30-1), ident>>30), want: ident},
			{mem: long(tagged, 0, 1<<30-1, 1<<30-1, 15), want: 1<<64 - 1},
			{mem: long(tagged, 0, 0, 0, 16), err: true},     // 2^64
			{mem: long(tagged, 0, 1<<30), err: true},        // not a 30-bit digit
			{mem: long(tagged, 0, 1, 1, 1, 1), err: true},   // four digits
			{mem: long(tagged, 2, 5), err: true},            // negative
			{mem: long(tagged, 0, 1, 2, 3)[:30], err: true}, // short read
		} {
			mem := append(make([]byte, 0x100), c.mem...) // the int at 0x100
			got, err := readLong(bytes.NewReader(mem), o, 0x100)
			if c.err != (err != nil) || got != c.want {
				t.Errorf("3.%d: readLong(% x) = %#x, %v; want %#x (error %v)", minor, c.mem[16:], got, err, c.want, c.err)
			}
		}
	}
}
