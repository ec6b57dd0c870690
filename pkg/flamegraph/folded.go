package flamegraph

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

// maxFoldedLine caps one line of folded text; longer lines are an error.
const maxFoldedLine = 16 << 20

// pythonLabel matches a Python frame as Frame.Label writes it: "qualname (file:line)".
var pythonLabel = regexp.MustCompile(`^(.+) \((.+):([0-9]+)\)$`)

// ParseFolded reads folded stacks, one "root;...;leaf count" line per stack,
// into a profile with one sample type, samples/count. Blank lines and lines
// starting with '#' are skipped. Frame labels written by Frame.Label get their
// kind back: "name (file:line)" is a Python frame, "name_[k]" a kernel frame,
// "[name]" a bprof pseudo-frame; anything else is a native frame.
func ParseFolded(r io.Reader) (*profile.Profile, error) {
	b := newFoldedBuilder()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxFoldedLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := b.addLine(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan folded stacks: %w", err)
	}
	return b.p, nil
}

// foldedBuilder turns folded lines into a profile, one Location per distinct frame.
type foldedBuilder struct {
	p        *profile.Profile
	locs     map[string]*profile.Location
	funcs    map[[2]string]*profile.Function
	mappings map[Kind]*profile.Mapping
}

func newFoldedBuilder() *foldedBuilder {
	return &foldedBuilder{
		p: &profile.Profile{
			SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}},
		},
		locs:     make(map[string]*profile.Location),
		funcs:    make(map[[2]string]*profile.Function),
		mappings: make(map[Kind]*profile.Mapping),
	}
}

func (b *foldedBuilder) addLine(line string) error {
	i := strings.LastIndexAny(line, " \t")
	if i < 0 {
		return fmt.Errorf("no count after the stack in %q", truncate(line, 60))
	}
	count, err := strconv.ParseInt(line[i+1:], 10, 64)
	if err != nil || count < 0 {
		return fmt.Errorf("bad count %q", truncate(line[i+1:], 30))
	}
	stack := strings.TrimSpace(line[:i])
	if stack == "" {
		return fmt.Errorf("empty stack")
	}
	labels := strings.Split(stack, ";")
	s := &profile.Sample{Value: []int64{count}, Location: make([]*profile.Location, 0, len(labels))}
	for j := len(labels) - 1; j >= 0; j-- {
		if labels[j] == "" {
			return fmt.Errorf("empty frame in %q", truncate(stack, 60))
		}
		s.Location = append(s.Location, b.location(labels[j]))
	}
	b.p.Sample = append(b.p.Sample, s)
	return nil
}

func (b *foldedBuilder) location(label string) *profile.Location {
	if loc, ok := b.locs[label]; ok {
		return loc
	}
	f := parseLabel(label)
	fn := b.function(f.Name, f.File)
	loc := &profile.Location{
		ID:      uint64(len(b.p.Location) + 1),
		Mapping: b.mapping(f.Kind),
		Line:    []profile.Line{{Function: fn, Line: f.Line}},
	}
	b.p.Location = append(b.p.Location, loc)
	b.locs[label] = loc
	return loc
}

func (b *foldedBuilder) function(name, file string) *profile.Function {
	k := [2]string{name, file}
	if fn, ok := b.funcs[k]; ok {
		return fn
	}
	fn := &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: name, SystemName: name, Filename: file}
	b.p.Function = append(b.p.Function, fn)
	b.funcs[k] = fn
	return fn
}

func (b *foldedBuilder) mapping(k Kind) *profile.Mapping {
	var file string
	switch k {
	case Python:
		file = "[python]"
	case Kernel:
		file = "[kernel.kallsyms]"
	case OffCPU, Pseudo:
		file = "[bprof]"
		k = Pseudo
	default:
		return nil
	}
	if m, ok := b.mappings[k]; ok {
		return m
	}
	m := &profile.Mapping{ID: uint64(len(b.p.Mapping) + 1), File: file}
	b.p.Mapping = append(b.p.Mapping, m)
	b.mappings[k] = m
	return m
}

// parseLabel is the inverse of Frame.Label.
func parseLabel(label string) Frame {
	if m := pythonLabel.FindStringSubmatch(label); m != nil {
		if line, err := strconv.ParseInt(m[3], 10, 64); err == nil {
			return Frame{Name: m[1], File: m[2], Line: line, Kind: Python}
		}
	}
	if n := strings.TrimSuffix(label, kernelSuffix); n != label && n != "" {
		return Frame{Name: n, Kind: Kernel}
	}
	if len(label) > 2 && label[0] == '[' && label[len(label)-1] == ']' {
		if strings.HasPrefix(label, "[off-cpu") {
			return Frame{Name: label, Kind: OffCPU}
		}
		return Frame{Name: label, Kind: Pseudo}
	}
	return Frame{Name: label, Kind: Native}
}

// WriteFolded writes one "root;...;leaf value" line per distinct stack, sorted.
func WriteFolded(w io.Writer, s *Stacks) error {
	labels := make([]string, len(s.Frames))
	for i, f := range s.Frames {
		// ';' separates frames and a trailing count would be misread: keep both out of labels.
		labels[i] = strings.ReplaceAll(f.Label(), ";", ":")
	}
	sums := make(map[string]int64, len(s.Samples))
	var sb strings.Builder
	for _, smp := range s.Samples {
		sb.Reset()
		for j, fi := range smp.Stack {
			if j > 0 {
				sb.WriteByte(';')
			}
			sb.WriteString(labels[fi])
		}
		sums[sb.String()] += smp.Value
	}
	keys := make([]string, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bw := bufio.NewWriter(w)
	for _, k := range keys {
		fmt.Fprintf(bw, "%s %d\n", k, sums[k])
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write folded stacks: %w", err)
	}
	return nil
}

// looksFolded reports whether data is text whose first meaningful line ends in a count.
func looksFolded(data []byte) bool {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		i := bytes.LastIndexAny(line, " \t")
		if i <= 0 {
			return false
		}
		_, err := strconv.ParseInt(string(line[i+1:]), 10, 64)
		return err == nil
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
