package flamegraph

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// SpeedscopeSchema is the file format schema that speedscope files name.
const SpeedscopeSchema = "https://www.speedscope.app/file-format-schema.json"

type ssFile struct {
	Schema             string      `json:"$schema"`
	Shared             ssShared    `json:"shared"`
	Profiles           []ssProfile `json:"profiles"`
	Name               string      `json:"name,omitempty"`
	ActiveProfileIndex int         `json:"activeProfileIndex"`
	Exporter           string      `json:"exporter"`
}

type ssShared struct {
	Frames []ssFrame `json:"frames"`
}

type ssFrame struct {
	Name string `json:"name"`
	File string `json:"file,omitempty"`
	Line int64  `json:"line,omitempty"`
}

type ssProfile struct {
	Type       string    `json:"type"`
	Name       string    `json:"name"`
	Unit       string    `json:"unit"`
	StartValue int64     `json:"startValue"`
	EndValue   int64     `json:"endValue"`
	Samples    [][]int32 `json:"samples"`
	Weights    []int64   `json:"weights"`
}

// speedscopeUnit maps a pprof unit to one of speedscope's ValueUnit values.
func speedscopeUnit(u string) string {
	switch u {
	case "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes":
		return u
	}
	return "none"
}

// WriteSpeedscope writes s in speedscope's file format: one sampled profile,
// or with cfg.PerThread one per thread (sorted by thread), frames shared.
// Stacks are root first, as speedscope wants.
func WriteSpeedscope(w io.Writer, s *Stacks, cfg Config) error {
	f := ssFile{
		Schema:   SpeedscopeSchema,
		Name:     cfg.Title,
		Exporter: "bprof flamegraph",
		Shared:   ssShared{Frames: make([]ssFrame, len(s.Frames))},
	}
	for i, fr := range s.Frames {
		f.Shared.Frames[i] = ssFrame{Name: fr.Name, File: fr.File, Line: fr.Line}
	}
	unit := speedscopeUnit(s.Unit)
	byName := make(map[string]*ssProfile)
	var names []string
	for _, smp := range s.Samples {
		name := s.Type
		if cfg.PerThread {
			name = smp.Thread
			if name == "" {
				name = "unknown thread"
			}
		}
		p, ok := byName[name]
		if !ok {
			p = &ssProfile{Type: "sampled", Name: name, Unit: unit, Samples: [][]int32{}, Weights: []int64{}}
			byName[name] = p
			names = append(names, name)
		}
		p.Samples = append(p.Samples, smp.Stack)
		p.Weights = append(p.Weights, smp.Value)
		p.EndValue += smp.Value
	}
	sort.Strings(names)
	for _, n := range names {
		f.Profiles = append(f.Profiles, *byName[n])
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := json.NewEncoder(bw).Encode(f); err != nil {
		return fmt.Errorf("write speedscope: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write speedscope: %w", err)
	}
	return nil
}
