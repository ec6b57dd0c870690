package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

// funcShares is a profile reduced to what the accuracy table compares: the
// weight of samples whose stack holds each Python function (counted once per
// sample however often it recurses), and the weight of all samples.
type funcShares struct {
	samples   int64   // samples taken
	total     float64 // their summed weight
	inclusive map[string]float64
}

func (f funcShares) share(fn string) float64 {
	if f.total == 0 {
		return 0
	}
	return f.inclusive[fn] / f.total
}

// readAustin reads austin's collapsed output: "# key: value" headers, then
// one line per sample, "P<pid>;T<iid>:<tid>;<file>:<function>:<line>;... <metric>",
// root first; in CPU mode (-s) the metric is the sample's CPU microseconds.
func readAustin(path string) (funcShares, error) {
	res := funcShares{inclusive: map[string]float64{}}
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("read austin output: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		stack, metric, ok := cutLast(line, ' ')
		v, err := strconv.ParseFloat(metric, 64)
		if !ok || err != nil {
			return res, fmt.Errorf("austin output line %d: no metric in %q", n, line)
		}
		res.samples++
		res.total += v
		seen := map[string]bool{}
		for i, frame := range strings.Split(stack, ";") {
			if i < 2 {
				continue // P<pid>, T<iid>:<tid>
			}
			if fn := austinFunction(frame); fn != "" && !seen[fn] {
				seen[fn] = true
				res.inclusive[fn] += v
			}
		}
	}
	return res, sc.Err()
}

// austinFunction takes the function out of "<file>:<function>:<line>"; the
// file may hold colons, the other two do not.
func austinFunction(frame string) string {
	rest, _, ok := cutLast(frame, ':')
	if !ok {
		return ""
	}
	_, fn, _ := cutLast(rest, ':')
	return fn
}

func cutLast(s string, sep byte) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// readBprof reads a bprof profile the same way, weighing each sample by its
// samples/count value; only Python frames count as functions.
func readBprof(r io.Reader) (funcShares, error) {
	res := funcShares{inclusive: map[string]float64{}}
	p, err := profile.Parse(r)
	if err != nil {
		return res, fmt.Errorf("parse bprof profile: %w", err)
	}
	for _, s := range p.Sample {
		v := s.Value[0]
		res.samples += v
		res.total += float64(v)
		seen := map[string]bool{}
		for _, loc := range s.Location {
			if loc.Mapping == nil || loc.Mapping.File != "[python]" || len(loc.Line) == 0 {
				continue
			}
			if fn := loc.Line[0].Function.Name; !seen[fn] {
				seen[fn] = true
				res.inclusive[fn] += float64(v)
			}
		}
	}
	return res, nil
}
