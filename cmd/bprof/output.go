package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/flamegraph"
	"github.com/google/pprof/profile"
)

// output is one file a recording writes, in the format its name (or
// --format) asks for. format "" is pprof.
type output struct {
	path   string
	format flamegraph.Format
}

// pprofFormat is the name --format takes for gzipped pprof, the default.
const pprofFormat = "pprof"

// outputFor picks the format of path: format when given (pprof, svg, html,
// folded, speedscope), else from the extension (.svg, .html, .json,
// .folded, .txt); .pb.gz and anything else is pprof, so a recording never
// fails for want of a known extension.
func outputFor(path, format string) (output, error) {
	switch {
	case strings.EqualFold(format, pprofFormat):
		return output{path: path}, nil
	case format != "":
		f, err := flamegraph.ParseFormat(format)
		if err != nil {
			return output{}, usageError{fmt.Errorf("--format: unknown format %q (want pprof, svg, html, folded or speedscope)", format)}
		}
		return output{path: path, format: f}, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg", ".html", ".htm", ".folded", ".txt", ".json":
		f, err := flamegraph.FormatOf(path)
		return output{path: path, format: f}, err
	}
	return output{path: path}, nil
}

func (o output) String() string {
	if o.format == "" {
		return o.path + " (pprof)"
	}
	return fmt.Sprintf("%s (%s)", o.path, o.format)
}

// check fails, before anything is recorded, when o.path cannot be written:
// its directory is missing or read-only, or it is itself a directory (which
// the final rename would only find after the whole recording).
func (o output) check() error {
	if fi, err := os.Stat(o.path); err == nil && fi.IsDir() {
		return fmt.Errorf("output %s is a directory: give a file name, as in %s", o.path, filepath.Join(o.path, "profile.pb.gz"))
	}
	return export.CheckWritable(o.path)
}

// write writes p to o.path through a temporary file, so a failure leaves
// neither a part of it nor the temporary file.
func (o output) write(p *profile.Profile) error {
	if o.format == "" {
		return export.WriteFile(o.path, p)
	}
	s, err := flamegraph.Extract(p, flamegraph.Options{})
	if errors.Is(err, flamegraph.ErrNoSamples) {
		return fmt.Errorf("write %s: no samples were recorded, so there is nothing to draw", o.path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	cfg := flamegraph.Config{Format: o.format}
	if cfg.MinWidth, err = flamegraph.ParseMinWidth(flamegraph.DefaultMinWidth); err != nil {
		return err
	}
	return flamegraph.WriteFile(o.path, func(w io.Writer) error { return flamegraph.Write(w, s, cfg) })
}

// writeAll writes p to every output; a failure of one does not keep the
// others from being written.
func writeAll(outs []output, p *profile.Profile) error {
	var errs []error
	for _, o := range outs {
		if err := o.write(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
