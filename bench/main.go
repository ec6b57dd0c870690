// Command bench measures bprof's costs beside its peers' and writes
// docs/BENCHMARKS.md.
//
// It runs as root on the machine it reports on; `make bench` runs it, and
// bench/peers.sh installs the peers first. bprof's own figures come from
// clocks that the machine's noise does not move much: the kernel's own
// accounting of BPF run time (bpf_stats), and CPU time and peak RSS of bprof
// itself (rusage). The slowdown and accuracy tables time a target under each
// tool, pinned and alternating. See bench/README.md for how to read them.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/profiler"
)

// config is what the flags set.
type config struct {
	out        string
	python     string
	duration   time.Duration
	rounds     int
	iterations int
	libs       int
	hostBill   time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.out, "out", "docs/BENCHMARKS.md", "report to write")
	flag.StringVar(&cfg.python, "python", defaultPython(), "CPython for the host workloads")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of each measurement")
	flag.IntVar(&cfg.rounds, "rounds", 9, "alternating rounds of the slowdown and off-CPU on/off tables")
	flag.IntVar(&cfg.iterations, "iterations", 60000, "iterations of the slowdown workload (about 3 s of CPU)")
	flag.IntVar(&cfg.libs, "libs", 300, "shared objects of the symbolization workload")
	flag.DurationVar(&cfg.hostBill, "hostbill", 5*time.Minute, "length of the host bill's agent run")
	only := flag.String("only", "", "run these parts only, comma-separated, and print them (no report written): "+
		"depth, agent, startup, hostbill, scale, offcpu, peers, slowdown, accuracy, memory, symbolize, unwind, svg")
	flag.Parse()
	if os.Geteuid() != 0 {
		log.Fatal("bench: run as root (it loads BPF programs and reads their run time)")
	}
	if err := run(cfg, *only); err != nil {
		log.Fatalf("bench: %v", err)
	}
}

func run(cfg config, only string) error {
	selected := map[string]bool{}
	for _, name := range strings.Split(only, ",") {
		if name = strings.TrimSpace(name); name != "" {
			selected[name] = true
		}
	}
	var c *chroot
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	root := func() (*chroot, error) {
		if c != nil {
			return c, nil
		}
		var err error
		c, err = openChroot()
		return c, err
	}
	all := parts(root)
	for name := range selected {
		if !slices.ContainsFunc(all, func(p part) bool { return p.name == name }) {
			return fmt.Errorf("no part %q", name)
		}
	}
	r := report{cfg: cfg, start: time.Now()}
	for _, p := range all {
		if len(selected) > 0 && !selected[p.name] {
			continue
		}
		// A part that cannot run (a peer missing, a workload failing) is
		// reported as such; the others still run.
		start := time.Now()
		if err := p.run(cfg, &r); err != nil {
			log.Printf("%s: %v", p.name, err)
			r.failed = append(r.failed, fmt.Sprintf("%s: %v", p.name, err))
			continue
		}
		log.Printf("%s: done in %s", p.name, time.Since(start).Round(time.Second))
	}
	r.elapsed = time.Since(r.start)
	md := r.markdown()
	fmt.Print(md)
	if len(selected) == 0 {
		if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if len(r.failed) > 0 {
		return fmt.Errorf("%d parts did not run: %s", len(r.failed), strings.Join(r.failed, "; "))
	}
	return nil
}

func defaultPython() string {
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		root = filepath.Join(os.Getenv("HOME"), ".pyenv")
	}
	p := filepath.Join(root, "versions", "3.11.7", "bin", "python3")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "python3"
}

// startWorkload runs testdata/python/depth.py and waits until it is ready.
func startWorkload(python string, depth, threads int, d time.Duration) (*exec.Cmd, error) {
	return startScript(python, "depth.py", fmt.Sprint(depth), fmt.Sprint(d.Seconds()+5), fmt.Sprint(threads))
}

// startReady runs python with args and waits for it to print "ready".
func startReady(python string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(python, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("said %q (%v), want ready", line, err)
	}
	return cmd, nil
}

// startScript runs a script of testdata/python and waits until it prints "ready".
func startScript(python, script string, args ...string) (*exec.Cmd, error) {
	cmd, err := startReady(python, append([]string{filepath.Join("testdata", "python", script)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", script, err)
	}
	return cmd, nil
}

// profileFor profiles pid for d with a new Session and returns it stopped,
// for its profile and counters; the caller closes it.
func profileFor(pid int, opts profiler.Options, d time.Duration) (*profiler.Session, error) {
	s, err := profiler.NewSession(opts)
	if err != nil {
		return nil, err
	}
	if err := s.Add(pid); err != nil {
		s.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
