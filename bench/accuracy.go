package main

import (
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// accuracyFuncs are the functions of testdata/bench/shares.py.
var accuracyFuncs = []string{"work_a", "work_b", "work_c"}

// accuracyTools are compared with the workload's own accounting.
var accuracyTools = []string{"bprof", "austin -s"}

// accuracyRound holds, per tool, the profile it took and the workload's own
// accounting of that same run (thread CPU seconds per function, and "total").
type accuracyRound struct {
	own   map[string]map[string]float64
	tools map[string]funcShares
}

type accuracyResult struct {
	seconds time.Duration
	rounds  []accuracyRound
	command map[string]string
}

// ownShare is fn's share of the workload's CPU time by its own clock, in
// the run the tool profiled.
func (r accuracyRound) ownShare(name, fn string) float64 {
	own := r.own[name]
	if own["total"] == 0 {
		return 0
	}
	return own[fn] / own["total"]
}

// perSecond is a tool's samples per second of the target's CPU time.
func (r accuracyRound) perSecond(name string) float64 {
	if r.own[name]["total"] == 0 {
		return 0
	}
	return float64(r.tools[name].samples) / r.own[name]["total"]
}

// maxError is the largest per-function share error of a tool, in points.
func (r accuracyRound) maxError(name string) float64 {
	worst := 0.0
	for _, fn := range accuracyFuncs {
		worst = max(worst, math.Abs(r.tools[name].share(fn)-r.ownShare(name, fn)))
	}
	return worst * 100
}

// accuracy profiles the shares workload with bprof (CPU only) and austin
// (CPU mode, 100 Hz), alternately, and keeps both profiles beside the
// workload's own accounting.
func accuracy(c *chroot, rounds int, d time.Duration) (accuracyResult, error) {
	res := accuracyResult{seconds: d, command: map[string]string{}}
	tmp, err := os.MkdirTemp("", "bprof-accuracy-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	tools := toolset(c, tmp)
	argv, err := c.python("shares.py", fmt.Sprint(d.Seconds()))
	if err != nil {
		return res, err
	}
	outputs := map[string]string{"bprof": filepath.Join(tmp, "bprof.pb.gz"), "austin -s": c.host(filepath.Join(chrootInside, "austin.out"))}
	for round := 0; round < rounds; round++ {
		r := accuracyRound{own: map[string]map[string]float64{}, tools: map[string]funcShares{}}
		for k := range accuracyTools {
			name := accuracyTools[(round+k)%len(accuracyTools)]
			res.command[name] = tools[name].command()
			own, shares, err := profiledShares(tools[name], pinned(targetCPU, argv), outputs[name], tmp)
			if err != nil {
				return res, fmt.Errorf("%s: %w", name, err)
			}
			r.tools[name], r.own[name] = shares, own
		}
		res.rounds = append(res.rounds, r)
		log.Printf("accuracy: round %d: bprof max error %.1f points, %.1f samples/s; austin %.1f points",
			round+1, r.maxError("bprof"), r.perSecond("bprof"), r.maxError("austin -s"))
	}
	return res, nil
}

// profiledShares runs the workload under one tool and reads both accounts.
func profiledShares(t tool, target []string, output, tmp string) (map[string]float64, funcShares, error) {
	os.Remove(output)
	w, err := launch(target)
	if err != nil {
		return nil, funcShares{}, err
	}
	defer w.stop()
	r, err := startTool(t, w.pid(), tmp)
	if err != nil {
		return nil, funcShares{}, err
	}
	own := map[string]float64{}
	if err := w.begin(); err != nil {
		r.stop()
		return nil, funcShares{}, err
	}
	err = w.result(&own)
	if werr := r.wait(); werr != nil {
		log.Printf("accuracy: %s: %v", t.name, werr)
	}
	r.log.Close()
	if err != nil {
		return nil, funcShares{}, err
	}
	var shares funcShares
	if t.name == "austin -s" {
		shares, err = readAustin(output)
	} else {
		var f *os.File
		if f, err = os.Open(output); err == nil {
			shares, err = readBprof(f)
			f.Close()
		}
	}
	return own, shares, err
}

func (a *accuracyResult) write(b *strings.Builder) {
	b.WriteString("\n## Accuracy: per-function shares against the workload's own accounting\n\n")
	fmt.Fprintf(b, "`testdata/bench/shares.py %g` (python3.13 in the trixie root, pinned to CPU %d): `work_a`, `work_b` and `work_c` take\n"+
		"about 50, 30 and 20 %% of %s of CPU time, and the workload times each call itself with `time.thread_time()`.\n"+
		"bprof (`--no-offcpu`) and austin (`-s`, CPU mode, 10 ms) each profile their own run, pinned to CPU %d, in %d\n"+
		"alternating rounds. A tool's share of a function is the weight of its samples whose stack holds the function\n"+
		"(bprof: samples; austin: the CPU microseconds it gives each sample) over all of the target's samples; the\n"+
		"error is that share minus the workload's own share in the same run, in percentage points. Medians over the\n"+
		"rounds, min–max in brackets.\n\n", a.seconds.Seconds(), targetCPU, a.seconds, toolCPU, len(a.rounds))
	b.WriteString("| function | own share | bprof share | bprof error | austin share | austin error |\n|---|---|---|---|---|---|\n")
	for _, fn := range accuracyFuncs {
		own := a.collect(func(r accuracyRound) float64 { return r.ownShare("bprof", fn) * 100 })
		row := fmt.Sprintf("| `%s` | %.1f %% |", fn, median(own))
		for _, name := range accuracyTools {
			share := a.collect(func(r accuracyRound) float64 { return r.tools[name].share(fn) * 100 })
			errs := a.collect(func(r accuracyRound) float64 { return (r.tools[name].share(fn) - r.ownShare(name, fn)) * 100 })
			lo, hi := spread(errs)
			row += fmt.Sprintf(" %.1f %% | %+.1f (%+.1f to %+.1f) |", median(share), median(errs), lo, hi)
		}
		b.WriteString(row + "\n")
	}
	b.WriteString("\n| tool | largest error of a function, points | samples per second of target CPU (nominal 100) | command |\n|---|---|---|---|\n")
	for _, name := range accuracyTools {
		worst := a.collect(func(r accuracyRound) float64 { return r.maxError(name) })
		rate := a.collect(func(r accuracyRound) float64 { return r.perSecond(name) })
		wlo, whi := spread(worst)
		rlo, rhi := spread(rate)
		fmt.Fprintf(b, "| %s | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | `%s` |\n", name, median(worst), wlo, whi,
			median(rate), rlo, rhi, strings.ReplaceAll(a.command[name], chrootRoot(), "ROOT"))
	}
	n := median(a.collect(func(r accuracyRound) float64 { return float64(r.tools["bprof"].samples) }))
	if n > 0 {
		fmt.Fprintf(b, "\nSampling alone explains errors of this size: with %.0f samples a run, a share p has a standard error of\n"+
			"√(p(1−p)/%.0f), %.1f points at 50 %% and %.1f at 20 %%.\n", n, n, 100*math.Sqrt(0.25/n), 100*math.Sqrt(0.16/n))
	}
	b.WriteString("\nbprof's rate counts its samples over the thread CPU seconds the workload reports for the same run;\n" +
		"austin's counts its sample lines the same way (it samples every 10 ms of wall time and, with `-s`, drops the\n" +
		"samples of a thread that is idle).\n")
}

// collect is f of every round.
func (a *accuracyResult) collect(f func(accuracyRound) float64) []float64 {
	var xs []float64
	for _, r := range a.rounds {
		xs = append(xs, f(r))
	}
	return xs
}
