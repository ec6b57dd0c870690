package flamegraph

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

// Options choose which samples of a profile are drawn, and with which value.
type Options struct {
	// SampleType is the name of the sample type to use (pprof's ValueType.Type:
	// "cpu", "wall", "samples", ...). Empty means "cpu" when the profile has it,
	// else the profile's default sample type, else its last one.
	SampleType string
	// Thread keeps the samples of one thread: a number matches the thread_id
	// label, anything else the thread_name label.
	Thread string
	// Focus keeps the stacks with a frame whose Label matches.
	Focus *regexp.Regexp
	// Ignore drops the stacks with a frame whose Label matches.
	Ignore *regexp.Regexp
	// States keeps the samples in one of these states; HideStates drops
	// those in one of them. A sample's state is its state label (sleep,
	// runqueue, gil), or "oncpu" when it has none.
	States, HideStates []string
}

// Stacks are the samples of one sample type, root first, with the frames they share.
type Stacks struct {
	Frames  []Frame
	Samples []Sample
	Type    string // sample type name, such as "cpu"
	Unit    string // sample type unit, such as "nanoseconds"
	Total   int64  // sum of the samples' values
}

// Sample is one stack and its value.
type Sample struct {
	Stack  []int32 // indexes into Stacks.Frames, root first
	Value  int64
	Thread string // "name (tid)", "name", "tid" or "" (from the sample labels)
}

// SampleTypeIndex returns the index in p.SampleType of the sample type called
// name, or of the default one when name is empty (see Options.SampleType).
func SampleTypeIndex(p *profile.Profile, name string) (int, error) {
	if len(p.SampleType) == 0 {
		return 0, errors.New("profile has no sample types")
	}
	find := func(n string) int {
		for i, st := range p.SampleType {
			if st.Type == n {
				return i
			}
		}
		return -1
	}
	if name != "" {
		if i := find(name); i >= 0 {
			return i, nil
		}
		have := make([]string, len(p.SampleType))
		for i, st := range p.SampleType {
			have[i] = st.Type
		}
		return 0, fmt.Errorf("no sample type %q (have %s)", name, strings.Join(have, ", "))
	}
	if i := find("cpu"); i >= 0 {
		return i, nil
	}
	if p.DefaultSampleType != "" {
		if i := find(p.DefaultSampleType); i >= 0 {
			return i, nil
		}
	}
	return len(p.SampleType) - 1, nil
}

// ErrNoSamples is returned (wrapped) when no sample is left after Options' filters.
var ErrNoSamples = errors.New("no samples left")

// Extract turns the samples of p chosen by opt into Stacks. Samples with a
// value of zero or less are left out.
func Extract(p *profile.Profile, opt Options) (*Stacks, error) {
	vi, err := SampleTypeIndex(p, opt.SampleType)
	if err != nil {
		return nil, err
	}
	s := &Stacks{Type: p.SampleType[vi].Type, Unit: p.SampleType[vi].Unit}

	// Frames of each location, leaf first, as indexes into s.Frames.
	index := make(map[Frame]int32)
	var focus, ignore []bool
	locFrames := make(map[uint64][]int32, len(p.Location))
	var buf []Frame
	for _, loc := range p.Location {
		buf = locationFrames(buf[:0], loc)
		ids := make([]int32, len(buf))
		for i, f := range buf {
			id, ok := index[f]
			if !ok {
				id = int32(len(s.Frames))
				index[f] = id
				s.Frames = append(s.Frames, f)
				label := f.Label()
				focus = append(focus, opt.Focus != nil && opt.Focus.MatchString(label))
				ignore = append(ignore, opt.Ignore != nil && opt.Ignore.MatchString(label))
			}
			ids[i] = id
		}
		locFrames[loc.ID] = ids
	}

	var stack []int32
	for _, smp := range p.Sample {
		if vi >= len(smp.Value) || smp.Value[vi] <= 0 {
			continue
		}
		if opt.Thread != "" && !onThread(smp, opt.Thread) {
			continue
		}
		if st := stateOf(smp); len(opt.States) > 0 && !slices.Contains(opt.States, st) || slices.Contains(opt.HideStates, st) {
			continue
		}
		stack = stack[:0]
		for i := len(smp.Location) - 1; i >= 0; i-- {
			ids := locFrames[smp.Location[i].ID]
			for j := len(ids) - 1; j >= 0; j-- {
				stack = append(stack, ids[j])
			}
		}
		if opt.Focus != nil && !anyOf(stack, focus) || opt.Ignore != nil && anyOf(stack, ignore) {
			continue
		}
		s.Samples = append(s.Samples, Sample{
			Stack:  append([]int32(nil), stack...),
			Value:  smp.Value[vi],
			Thread: threadOf(smp),
		})
		s.Total += smp.Value[vi]
	}
	if len(s.Samples) == 0 {
		return nil, ErrNoSamples
	}
	return s, nil
}

func anyOf(stack []int32, set []bool) bool {
	for _, id := range stack {
		if set[id] {
			return true
		}
	}
	return false
}

// stateOf is the sample's state label, or "oncpu" when it has none.
func stateOf(s *profile.Sample) string {
	if st := s.Label["state"]; len(st) > 0 {
		return st[0]
	}
	return "oncpu"
}

func onThread(s *profile.Sample, thread string) bool {
	if tid, err := strconv.ParseInt(thread, 10, 64); err == nil {
		for _, v := range s.NumLabel["thread_id"] {
			if v == tid {
				return true
			}
		}
		for _, v := range s.Label["thread_id"] {
			if v == thread {
				return true
			}
		}
	}
	for _, v := range s.Label["thread_name"] {
		if v == thread {
			return true
		}
	}
	return false
}

func threadOf(s *profile.Sample) string {
	var name, tid string
	if v := s.Label["thread_name"]; len(v) > 0 {
		name = v[0]
	}
	if v := s.NumLabel["thread_id"]; len(v) > 0 {
		tid = strconv.FormatInt(v[0], 10)
	} else if v := s.Label["thread_id"]; len(v) > 0 {
		tid = v[0]
	}
	switch {
	case name != "" && tid != "":
		return name + " (" + tid + ")"
	case name != "":
		return name
	}
	return tid
}
