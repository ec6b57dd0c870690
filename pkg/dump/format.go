package dump

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/bprof/bprof/pkg/symbolize"
)

// Write prints d for a person: a header, then each thread with its state
// and its Python, native and kernel frames, innermost first (as py-spy dump
// and Python tracebacks read from the other end: the innermost call is the
// first line here).
func Write(w io.Writer, d *Process) error {
	bw := bufio.NewWriter(w)
	py := "no Python"
	if d.Python != "" {
		py = "Python " + d.Python
	}
	counts := map[State]int{}
	for _, th := range d.Threads {
		counts[th.State]++
	}
	fmt.Fprintf(bw, "Process %d (%s), %s: %d threads (%d on CPU, %d waiting, %d waiting for the GIL), read in %s\n",
		d.PID, d.Name, py, len(d.Threads), counts[OnCPU], counts[Waiting], counts[GILWait], d.Took.Round(time.Millisecond))
	if d.Note != "" {
		fmt.Fprintf(bw, "note: %s\n", d.Note)
	}
	for _, th := range d.Threads {
		fmt.Fprintf(bw, "\nThread %d %q: %s\n", th.TID, th.Name, th.State)
		section(bw, "python", th.Python)
		section(bw, "native", th.Native)
		section(bw, "kernel", th.Kernel)
		if th.Why != "" {
			fmt.Fprintf(bw, "  (%s)\n", th.Why)
		}
	}
	return bw.Flush()
}

func section(w *bufio.Writer, kind string, frames []symbolize.Frame) {
	if len(frames) == 0 {
		return
	}
	fmt.Fprintf(w, "  %s:\n", kind)
	for _, f := range frames {
		switch {
		case f.Kind == symbolize.KindPython:
			fmt.Fprintf(w, "    %s (%s:%d)\n", f.Name, f.File, f.Line)
		case f.Module != nil && f.Kind == symbolize.KindNative:
			fmt.Fprintf(w, "    %s (%s)\n", f.Name, filepath.Base(f.Module.Path))
		default:
			fmt.Fprintf(w, "    %s\n", f.Name)
		}
	}
}
