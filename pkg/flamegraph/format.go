package flamegraph

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is an output format.
type Format string

// The output formats.
const (
	SVG        Format = "svg"
	HTML       Format = "html"
	Folded     Format = "folded"
	Speedscope Format = "speedscope"
)

// ParseFormat reads a format name as given to -f.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case SVG, HTML, Folded, Speedscope:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want svg, html, folded or speedscope)", s)
}

// FormatOf picks the format from a file name's extension: .svg, .html/.htm,
// .folded/.txt, .json (speedscope).
func FormatOf(name string) (Format, error) {
	switch ext := strings.ToLower(filepath.Ext(name)); ext {
	case ".svg":
		return SVG, nil
	case ".html", ".htm":
		return HTML, nil
	case ".folded", ".txt":
		return Folded, nil
	case ".json":
		return Speedscope, nil
	default:
		return "", fmt.Errorf("no format for extension %q of %s (use .svg, .html, .folded, .txt or .json, or -f)", ext, name)
	}
}

// Config is how stacks are written.
type Config struct {
	Format    Format
	Title     string   // the image's title; empty for a default one
	Inverted  bool     // an icicle graph: roots at the top
	MinWidth  MinWidth // frames narrower than this merge into their parent (SVG, HTML)
	PerThread bool     // speedscope: one profile per thread
	Base      *Stacks  // when set, a differential flame graph against this base (SVG, HTML)
}

// DefaultMinWidth is one pixel: narrower frames could be neither seen nor clicked.
const DefaultMinWidth = "1px"

// Write writes s in cfg.Format.
func Write(w io.Writer, s *Stacks, cfg Config) error {
	switch cfg.Format {
	case SVG:
		return WriteSVG(w, s, cfg)
	case HTML:
		return WriteHTML(w, s, cfg)
	case Folded:
		return WriteFolded(w, s)
	case Speedscope:
		return WriteSpeedscope(w, s, cfg)
	}
	return fmt.Errorf("unknown format %q", cfg.Format)
}

// WriteFile writes name through a temporary file in the same directory that
// is renamed over name once write succeeded, so a failure leaves nothing
// behind and never a half-written file.
func WriteFile(name string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
