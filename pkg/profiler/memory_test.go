package profiler

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/memory"
	"github.com/google/pprof/profile"
)

// memoryCase is one way a CPython gets the allocation sampler: attached by
// PEP 768 (3.14) or loaded by the process through bprof_client.
type memoryCase struct {
	name   string
	py     interpreter
	client bool
}

// memoryCases: sid's 3.14 by attaching, pyenv's 3.8, 3.11 and 3.13 through
// the client.
func memoryCases(t *testing.T) []memoryCase {
	t.Helper()
	var out []memoryCase
	for _, py := range interpreters(t) {
		switch {
		case py.chroot != "" && py.minor >= 14:
			out = append(out, memoryCase{name: py.name + "-attach", py: py})
		case py.chroot == "" && (py.name == "3.8.18" || py.name == "3.11.7" || py.name == "3.13.0"):
			out = append(out, memoryCase{name: py.name + "-client", py: py, client: true})
		}
	}
	var attach, client bool
	for _, c := range out {
		attach = attach || !c.client
		client = client || c.client && c.py.minor == 11
	}
	if !attach || !client {
		testenv.Skip(t, "memory tests need sid's CPython 3.14 (.ci/setup-chroots.sh) and pyenv's 3.11.7")
	}
	return out
}

// libraryFile writes the allocation sampler where a client-route workload
// loads it from, as the agent does.
func libraryFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, memory.LibraryName())
	if err := os.WriteFile(path, memory.Library(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startMemoryWorkload runs testdata/python/memory.py for c with extra args.
func startMemoryWorkload(t *testing.T, c memoryCase, args ...string) *testenv.Process {
	t.Helper()
	if c.client {
		pydir, _ := filepath.Abs(filepath.Join("..", "..", "python"))
		args = append([]string{"--load", libraryFile(t), pydir}, args...)
	}
	return startScriptProc(t, c.py, "memory.py", args...)
}

// memSession is a Session with memory profiles on, running in the background.
type memSession struct {
	*Session
	t        *testing.T
	cancel   func()
	done     chan error
	warnings []string
	mu       sync.Mutex
}

func startMemSession(t *testing.T, sampleBytes int, pids ...int) *memSession {
	t.Helper()
	testenv.RequireRoot(t)
	ms := &memSession{t: t, done: make(chan error, 1)}
	s, err := NewSession(Options{Memory: true, AllocSampleBytes: sampleBytes, Warn: func(m string) {
		ms.mu.Lock()
		ms.warnings = append(ms.warnings, m)
		ms.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ms.Session = s
	for _, pid := range pids {
		if err := s.Add(pid); err != nil {
			s.Close()
			t.Fatal(err)
		}
		if err := s.AttachMemory(pid); err != nil {
			s.Close()
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ms.cancel = cancel
	go func() { ms.done <- s.Run(ctx) }()
	t.Cleanup(ms.stop)
	return ms
}

// stop ends Run and closes the session (once).
func (ms *memSession) stop() {
	if ms.cancel == nil {
		return
	}
	ms.cancel()
	ms.cancel = nil
	if err := <-ms.done; err != nil {
		ms.t.Errorf("Run: %v", err)
	}
	ms.Close()
	ms.mu.Lock()
	for _, w := range ms.warnings {
		ms.t.Logf("warning: %s", w)
	}
	ms.mu.Unlock()
}

func (ms *memSession) cut() *profile.Profile {
	ms.t.Helper()
	p, _, _ := ms.Cut()
	if err := p.CheckValid(); err != nil {
		ms.t.Fatal(err)
	}
	return p
}

// command sends a line to the workload and returns its answer.
func command(t *testing.T, proc *testenv.Process, line string) string {
	t.Helper()
	if _, err := fmt.Fprintln(proc.Stdin, line); err != nil {
		t.Fatalf("workload: send %q: %v", line, err)
	}
	ans, err := proc.Stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("workload: answer to %q: %v", line, err)
	}
	return strings.TrimSpace(ans)
}

// inclusive sums the values of type typ of the samples with a Python frame
// called fn.
func inclusive(p *profile.Profile, typ int, fn string) int64 {
	var v int64
	for _, s := range p.Sample {
		for _, f := range pyFrames(s) {
			if f.name == fn {
				v += s.Value[typ]
				break
			}
		}
	}
	return v
}

// TestMemoryShares: each function's share of alloc_space is the share of
// the bytes it allocates, within 3 points, whether the sampler was attached
// (3.14) or loaded by the client (3.8, 3.11, 3.13); the object counts agree
// with the sizes; and the memory types come after the CPU ones.
func TestMemoryShares(t *testing.T) {
	for _, c := range memoryCases(t) {
		t.Run(c.name, func(t *testing.T) {
			proc := startMemoryWorkload(t, c)
			ms := startMemSession(t, 256<<10, proc.Cmd.Process.Pid)
			// ~3,000 sampled allocations keep a share's sampling error under
			// a point; a target starved of CPU (a busy machine) takes longer.
			for start := time.Now(); time.Since(start) < 3*time.Second ||
				ms.MemoryCounts().Allocs < 3000 && time.Since(start) < 30*time.Second; {
				time.Sleep(250 * time.Millisecond)
			}
			ms.stop()
			p := ms.cut()
			var truth map[string]float64
			if err := json.Unmarshal([]byte(command(t, proc, "truth")), &truth); err != nil {
				t.Fatalf("workload's truth: %v", err)
			}
			var types []string
			for _, st := range p.SampleType {
				types = append(types, st.Type+"/"+st.Unit)
			}
			want := "samples/count cpu/nanoseconds alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes"
			if got := strings.Join(types, " "); got != want {
				t.Errorf("sample types %s, want %s", got, want)
			}
			objs, space := typeIndex(t, p, "alloc_objects"), typeIndex(t, p, "alloc_space")
			fns := []string{"alloc_big", "alloc_mid", "alloc_small"}
			var total int64
			got := map[string]int64{}
			gotObjs := map[string]int64{}
			for _, fn := range fns {
				got[fn] = inclusive(p, space, fn)
				gotObjs[fn] = inclusive(p, objs, fn)
				total += got[fn]
			}
			mc := ms.MemoryCounts()
			t.Logf("%d allocations sampled, %d dropped, %d frees; %.0f MB allocated by the three functions (estimate)",
				mc.Sampled, mc.Dropped, mc.Frees, float64(total)/1e6)
			if mc.Allocs < 2000 {
				t.Fatalf("only %d sampled allocations", mc.Allocs)
			}
			if mc.Dropped > mc.Sampled/100 {
				t.Errorf("%d of %d sampled allocations dropped", mc.Dropped, mc.Sampled)
			}
			size := map[string]float64{"alloc_big": 16033, "alloc_mid": 1033, "alloc_small": 133}
			for _, fn := range fns {
				share := float64(got[fn]) / float64(total)
				t.Logf("%s: alloc_space share %.3f, truth %.3f; %.0f bytes an object", fn, share, truth[fn],
					float64(got[fn])/float64(gotObjs[fn]))
				if math.Abs(share-truth[fn]) > 0.03 {
					t.Errorf("%s: alloc_space share %.3f, truth %.3f (±0.03)", fn, share, truth[fn])
				}
				// Bytes per object: the bytes objects' size. (Not for
				// alloc_big: the loop's own range objects, 2 for 4 big
				// objects, count as much as those before 3.14.)
				if per := float64(got[fn]) / float64(gotObjs[fn]); fn != "alloc_big" && math.Abs(per-size[fn]) > 0.1*size[fn] {
					t.Errorf("%s: %.0f bytes an object by alloc_space/alloc_objects, want ~%.0f", fn, per, size[fn])
				}
			}
			// Stacks start at the allocator the program called, not in the
			// sampler: no frame of the sampler's library is left. (CPU
			// samples may have them: the probes' cost is CPU time.)
			for _, s := range p.Sample {
				if s.Value[space] == 0 {
					continue
				}
				for _, loc := range s.Location {
					if loc.Mapping != nil && strings.Contains(loc.Mapping.File, "bprof-alloc-") {
						t.Fatalf("a sample keeps a frame of the sampler: %v", names(s))
					}
				}
			}
		})
	}
}

// TestMemoryHeapLive: 64 MiB kept alive by hold() show as inuse_space under
// hold within 15 %, while the other functions churn and keep next to
// nothing; once freed, they are gone from the next profile.
func TestMemoryHeapLive(t *testing.T) {
	for _, c := range memoryCases(t) {
		if !(c.py.minor == 11 || c.py.minor >= 14) {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			proc := startMemoryWorkload(t, c)
			ms := startMemSession(t, 64<<10, proc.Cmd.Process.Pid)
			time.Sleep(300 * time.Millisecond)
			if ans := command(t, proc, "hold 64"); ans != "held" {
				t.Fatalf("hold: %q", ans)
			}
			time.Sleep(time.Second)
			p := ms.cut()
			inuse := typeIndex(t, p, "inuse_space")
			const want = 64 << 20
			held := inclusive(p, inuse, "hold")
			var churn int64
			for _, fn := range []string{"alloc_big", "alloc_mid", "alloc_small"} {
				churn += inclusive(p, inuse, fn)
			}
			t.Logf("inuse_space: hold %.1f MiB (want 64), churning functions %.2f MiB; %d sampled blocks live",
				float64(held)/(1<<20), float64(churn)/(1<<20), ms.MemoryCounts().Live)
			if math.Abs(float64(held)-want) > 0.15*want {
				t.Errorf("inuse_space under hold %.1f MiB, want 64 MiB ± 15%%", float64(held)/(1<<20))
			}
			if churn > 4<<20 {
				t.Errorf("inuse_space under the churning functions %.1f MiB, want next to nothing", float64(churn)/(1<<20))
			}
			if ans := command(t, proc, "free"); ans != "freed" {
				t.Fatalf("free: %q", ans)
			}
			time.Sleep(500 * time.Millisecond)
			p = ms.cut()
			if left := inclusive(p, inuse, "hold"); left > want/20 {
				t.Errorf("after free: inuse_space under hold %.1f MiB, want ~0", float64(left)/(1<<20))
			}
			// alloc_space of that profile does not count hold's allocations
			// again: each profile has what was allocated during its span.
			if a := inclusive(p, typeIndex(t, p, "alloc_space"), "hold"); a > want/20 {
				t.Errorf("alloc_space under hold in the next profile: %.1f MiB", float64(a)/(1<<20))
			}
		})
	}
}

// TestMemoryRobustness: the target keeps working and the profile stays
// right when threads allocate concurrently, when it forks (the child runs and
// exits cleanly), when a second session takes over the sampler the first one
// left loaded, and when the target exits while sampled.
func TestMemoryRobustness(t *testing.T) {
	for _, c := range memoryCases(t) {
		if !(c.py.minor == 11 || c.py.minor >= 14) {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			proc := startMemoryWorkload(t, c, "--threads", "4")
			pid := proc.Cmd.Process.Pid

			// Four threads allocate at once; the main one forks meanwhile.
			ms := startMemSession(t, 256<<10, pid)
			time.Sleep(time.Second)
			if ans := command(t, proc, "fork"); ans != "child exit 0" {
				t.Errorf("forked child: %q, want child exit 0", ans)
			}
			time.Sleep(time.Second)
			ms.stop()
			p := ms.cut()
			space := typeIndex(t, p, "alloc_space")
			threads := map[int64]bool{}
			for _, s := range p.Sample {
				if s.Value[space] > 0 && hasFrame(s, "alloc_mid") {
					threads[s.NumLabel["thread_id"][0]] = true
					if s.NumLabel["pid"][0] != int64(pid) {
						t.Errorf("a sample of pid %d (the forked child?)", s.NumLabel["pid"][0])
					}
				}
			}
			if len(threads) < 4 {
				t.Errorf("allocations sampled in %d threads, want 4", len(threads))
			}
			mc := ms.MemoryCounts()
			t.Logf("first session: %d allocations sampled in %d threads, %d dropped", mc.Sampled, len(threads), mc.Dropped)

			// A second session uses the sampler the first one left loaded
			// (and turned off).
			ms = startMemSession(t, 256<<10, pid)
			time.Sleep(1500 * time.Millisecond)
			p = ms.cut()
			var total, mid int64
			for _, fn := range []string{"alloc_big", "alloc_mid", "alloc_small"} {
				v := inclusive(p, space, fn)
				total += v
				if fn == "alloc_mid" {
					mid = v
				}
			}
			if total == 0 {
				t.Fatal("second session: no allocation sampled")
			}
			var truth map[string]float64
			if err := json.Unmarshal([]byte(command(t, proc, "truth")), &truth); err != nil {
				t.Fatalf("workload's truth: %v", err)
			}
			if share := float64(mid) / float64(total); math.Abs(share-truth["alloc_mid"]) > 0.03 {
				t.Errorf("second session: alloc_mid share %.3f, truth %.3f", share, truth["alloc_mid"])
			}

			// The target exits while sampled: Run ends by itself, cleanly.
			fmt.Fprintln(proc.Stdin, "exit")
			select {
			case err := <-ms.done:
				ms.cancel = nil
				if err != nil {
					t.Errorf("Run after the target exited: %v", err)
				}
				ms.Close()
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not end after the target exited")
			}
			if err := proc.Cmd.Wait(); err != nil {
				t.Errorf("workload: %v", err)
			}
			p = ms.cut()
			if v := inclusive(p, typeIndex(t, p, "inuse_space"), "alloc_mid"); v != 0 {
				t.Errorf("inuse_space of an exited process: %d", v)
			}
		})
	}
}
