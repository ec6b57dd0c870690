package top

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// Options choose what an interval counts.
type Options struct {
	// SampleType is the value to count: "cpu" or "wall".
	SampleType string
	// TID keeps one thread's samples; 0 keeps all.
	TID int64
}

// Func is one function's time, in the sample type's unit.
type Func struct {
	Name string
	File string // the Python file, or the native file's path; "" for kernel and bprof frames
	Line int64  // the line that had the most own (else total) time
	Own  int64
	Tot  int64

	lines map[int64]int64
}

func (f *Func) Where() string {
	switch {
	case f.File == "":
		return ""
	case f.Line > 0:
		return fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	return f.File
}

type key struct{ name, file string }

// Interval is one interval's summary.
type Interval struct {
	Funcs   []*Func
	Total   int64            // the sum of the samples' values
	Samples int64            // samples (on-CPU, and off-CPU waits with wall time)
	Threads map[int64]string // thread ID to name, of every thread sampled
	Unit    string
}

// Summarize adds up p's samples of opt.SampleType.
func Summarize(p *profile.Profile, opt Options) (*Interval, error) {
	vi, ci := -1, -1
	for i, st := range p.SampleType {
		if st.Type == opt.SampleType {
			vi = i
		}
		if st.Type == "samples" {
			ci = i
		}
	}
	if vi < 0 {
		return nil, fmt.Errorf("profile has no %q values", opt.SampleType)
	}
	in := &Interval{Threads: map[int64]string{}, Unit: p.SampleType[vi].Unit}
	funcs := map[key]*Func{}
	seen := map[key]bool{}
	for _, s := range p.Sample {
		tid := int64(0)
		if t := s.NumLabel["thread_id"]; len(t) == 1 {
			tid = t[0]
		}
		if opt.TID != 0 && tid != opt.TID {
			continue
		}
		v := s.Value[vi]
		if v <= 0 {
			continue
		}
		if n := s.Label["thread_name"]; len(n) == 1 {
			in.Threads[tid] = n[0]
		} else if _, ok := in.Threads[tid]; !ok {
			in.Threads[tid] = ""
		}
		in.Total += v
		if ci >= 0 {
			in.Samples += s.Value[ci]
		}
		clear(seen)
		py := hasPython(s)
		own := true // the first frame counted is the innermost: it gets the own time
		for _, loc := range s.Location {
			if py && !isPython(loc) {
				continue // in a Python stack, native frames are the Python function's own time
			}
			for _, l := range loc.Line {
				if l.Function == nil {
					continue
				}
				k := key{l.Function.Name, fileOf(loc, l)}
				f := funcs[k]
				if f == nil {
					f = &Func{Name: k.name, File: k.file, lines: map[int64]int64{}}
					funcs[k] = f
				}
				if !seen[k] {
					seen[k] = true
					f.Tot += v
				}
				if own {
					f.Own += v
					f.lines[l.Line] += v
					own = false
				} else if _, ok := f.lines[l.Line]; !ok {
					f.lines[l.Line] = 0 // a line to show should it never run itself
				}
			}
		}
	}
	for _, f := range funcs {
		best := int64(-1)
		for line, v := range f.lines {
			if v > best || (v == best && line < f.Line) {
				f.Line, best = line, v
			}
		}
		f.lines = nil
		in.Funcs = append(in.Funcs, f)
	}
	return in, nil
}

func isPython(loc *profile.Location) bool {
	return loc.Mapping != nil && loc.Mapping.File == "[python]"
}

func hasPython(s *profile.Sample) bool {
	return slices.ContainsFunc(s.Location, isPython)
}

func fileOf(loc *profile.Location, l profile.Line) string {
	if isPython(loc) {
		return l.Function.Filename
	}
	if loc.Mapping == nil || strings.HasPrefix(loc.Mapping.File, "[") {
		return ""
	}
	return filepath.Base(loc.Mapping.File)
}

// SortBy is a column to sort the table by.
type SortBy int

const (
	ByOwn      SortBy = iota // share of this interval, own
	ByTotal                  // share of this interval, total
	ByOwnSum                 // own time since the start
	ByTotalSum               // total time since the start
)

func (s SortBy) String() string {
	return [...]string{"%own", "%total", "own time", "total time"}[s]
}

// Row is one line of the table.
type Row struct {
	Name, Where    string
	OwnPct, TotPct float64 // of the last interval
	OwnSum, TotSum int64   // since the start
}

// Table keeps the sums since the start and the last interval.
type Table struct {
	sums map[key]*Func
	last *Interval
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{sums: map[key]*Func{}} }

// Add makes in the last interval and adds it to the sums.
func (t *Table) Add(in *Interval) {
	t.last = in
	for _, f := range in.Funcs {
		k := key{f.Name, f.File}
		s := t.sums[k]
		if s == nil {
			s = &Func{Name: f.Name, File: f.File}
			t.sums[k] = s
		}
		s.Own += f.Own
		s.Tot += f.Tot
		if f.Own > 0 || s.Line == 0 {
			s.Line = f.Line
		}
	}
}

// Last is the last interval added, nil before the first.
func (t *Table) Last() *Interval { return t.last }

// Rows returns at most n rows (n <= 0: all) sorted by by, largest first.
// A function that ran since the start but not in the last interval keeps
// its row with 0 % (its sums still count).
func (t *Table) Rows(by SortBy, n int) []Row {
	cur := map[key]*Func{}
	var total int64
	if t.last != nil {
		total = t.last.Total
		for _, f := range t.last.Funcs {
			cur[key{f.Name, f.File}] = f
		}
	}
	rows := make([]Row, 0, len(t.sums))
	for k, s := range t.sums {
		r := Row{Name: s.Name, Where: s.Where(), OwnSum: s.Own, TotSum: s.Tot}
		if f := cur[k]; f != nil && total > 0 {
			r.OwnPct = 100 * float64(f.Own) / float64(total)
			r.TotPct = 100 * float64(f.Tot) / float64(total)
			r.Where = f.Where()
		}
		rows = append(rows, r)
	}
	val := func(r Row) float64 {
		switch by {
		case ByTotal:
			return r.TotPct
		case ByOwnSum:
			return float64(r.OwnSum)
		case ByTotalSum:
			return float64(r.TotSum)
		}
		return r.OwnPct
	}
	slices.SortFunc(rows, func(a, b Row) int {
		va, vb := val(a), val(b)
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		case a.TotSum != b.TotSum:
			return int(b.TotSum - a.TotSum)
		}
		return strings.Compare(a.Name, b.Name)
	})
	if n > 0 && len(rows) > n {
		rows = rows[:n]
	}
	return rows
}
