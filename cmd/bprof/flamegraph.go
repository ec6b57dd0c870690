package main

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/flamegraph"
)

const flamegraphSynopsis = `flamegraph IN... -o OUT [flags]

Renders pprof profiles (gzipped or not), folded stacks ("a;b;c 123" lines) and
directories of agent batches, merged, as an interactive SVG (.svg), a one-file
HTML page (.html), folded stacks (.folded, .txt) or speedscope JSON (.json).
OUT "-" writes to standard output (then -f picks the format, svg by default).

--min-width takes a fraction of all samples (0.001), a percent (0.1%) or pixels
of the 1200-pixel-wide image (2px, or any bare number of 1 or more); frames
narrower merge into their parent, siblings as one "[N narrow frames]" frame.

Examples:
  bprof flamegraph prof.pb.gz -o cpu.svg
  bprof flamegraph prof.pb.gz -o wall.html --sample-type wall --focus 'Ledger\.'
  bprof flamegraph batches/ --label application_name=ledger -o hour.svg`

func runFlamegraph(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("flamegraph", flamegraphSynopsis, stderr)
	out := fs.StringP("output", "o", "", "output file (`OUT`), format from its extension unless -f is given")
	format := fs.StringP("format", "f", "", "output format: svg, html, folded or speedscope")
	sampleType := fs.String("sample-type", "", "sample type to draw: cpu, wall, samples... (default cpu when present, else the profile's default)")
	thread := fs.String("thread", "", "keep one thread, by thread_name or numeric thread_id (`NAME|TID`)")
	states := fs.StringSlice("state", nil, "keep samples in these states: oncpu, sleep, runqueue, gil (`LIST`)")
	hideStates := fs.StringSlice("hide-state", nil, "drop samples in these states, e.g. gil (`LIST`)")
	focus := fs.String("focus", "", "keep stacks with a frame matching `REGEX`")
	ignore := fs.String("ignore", "", "drop stacks with a frame matching `REGEX`")
	title := fs.String("title", "", "title of the image")
	inverted := fs.Bool("inverted", false, "draw an icicle graph (roots at the top)")
	minWidth := fs.String("min-width", flamegraph.DefaultMinWidth, "narrowest frame drawn: fraction (0.001), percent (0.1%) or pixels (2px)")
	perThread := fs.Bool("per-thread", false, "speedscope: one profile per thread")
	diff := fs.String("diff", "", "draw a differential flame graph against the `BASE` profile (file or batch directory)")
	from := fs.String("from", "", "batch directories: keep batches ending at or after this RFC 3339 `TIME`")
	until := fs.String("until", "", "batch directories: keep batches starting at or before this RFC 3339 `TIME`")
	labels := fs.StringArray("label", nil, "batch directories: keep batches with this `k=v` (application_name, pid, hostname or a label); repeatable")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{fmt.Errorf("no input profiles")}
	}
	if *out == "" {
		return usageError{fmt.Errorf("no output: give -o OUT")}
	}

	cfg := flamegraph.Config{Title: *title, Inverted: *inverted, PerThread: *perThread}
	var err error
	switch {
	case *format != "":
		cfg.Format, err = flamegraph.ParseFormat(*format)
	case *out == "-":
		cfg.Format = flamegraph.SVG
	default:
		cfg.Format, err = flamegraph.FormatOf(*out)
	}
	if err != nil {
		return usageError{err}
	}
	if cfg.MinWidth, err = flamegraph.ParseMinWidth(*minWidth); err != nil {
		return usageError{err}
	}
	opt := flamegraph.Options{SampleType: *sampleType, Thread: *thread, States: *states, HideStates: *hideStates}
	for _, st := range append(slices.Clone(*states), *hideStates...) {
		if !slices.Contains([]string{"oncpu", "sleep", "runqueue", "gil"}, st) {
			return usageError{fmt.Errorf("unknown state %q: use oncpu, sleep, runqueue or gil", st)}
		}
	}
	if opt.Focus, err = compile("focus", *focus); err != nil {
		return err
	}
	if opt.Ignore, err = compile("ignore", *ignore); err != nil {
		return err
	}
	var filter flamegraph.BatchFilter
	if filter.From, err = parseTime("from", *from); err != nil {
		return err
	}
	if filter.Until, err = parseTime("until", *until); err != nil {
		return err
	}
	for _, kv := range *labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("parse --label %q: want key=value", kv)}
		}
		if filter.Labels == nil {
			filter.Labels = make(map[string]string)
		}
		filter.Labels[k] = v
	}

	stacks, err := loadStacks(fs.Args(), filter, opt)
	if err != nil {
		return err
	}
	if *diff != "" {
		if cfg.Base, err = loadStacks([]string{*diff}, filter, opt); err != nil {
			return fmt.Errorf("diff base: %w", err)
		}
	}
	write := func(w io.Writer) error { return flamegraph.Write(w, stacks, cfg) }
	if *out == "-" {
		return write(stdout)
	}
	return flamegraph.WriteFile(*out, write)
}

func loadStacks(inputs []string, filter flamegraph.BatchFilter, opt flamegraph.Options) (*flamegraph.Stacks, error) {
	p, err := flamegraph.Load(inputs, filter, opt.SampleType)
	if err != nil {
		return nil, err
	}
	s, err := flamegraph.Extract(p, opt)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", strings.Join(inputs, ", "), err)
	}
	return s, nil
}

func compile(flag, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, usageError{fmt.Errorf("parse --%s: %w", flag, err)}
	}
	return re, nil
}

func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("parse --%s: %w", flag, err)}
	}
	return t, nil
}
