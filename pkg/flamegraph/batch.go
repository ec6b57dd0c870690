package flamegraph

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// BatchFilter picks agent batches by their JSON sidecar. The zero value keeps all.
type BatchFilter struct {
	// From and Until keep the batches whose [start, end] overlaps [From, Until];
	// a zero time leaves that side open.
	From, Until time.Time
	// Labels keep the batches that have every key=value: the key is
	// "application_name", "pid", "hostname" or one of the sidecar's labels.
	Labels map[string]string
}

// Batch is the sidecar of one agent batch (docs/CONVENTIONS.md).
type Batch struct {
	ApplicationName string            `json:"application_name"`
	Labels          map[string]string `json:"labels"`
	Hostname        string            `json:"hostname"`
	PID             int               `json:"pid"`
	Start           time.Time         `json:"start"`
	End             time.Time         `json:"end"`
	Samples         int64             `json:"samples"`
}

func (b *Batch) keep(f BatchFilter) bool {
	if !f.From.IsZero() && b.End.Before(f.From) {
		return false
	}
	if !f.Until.IsZero() && b.Start.After(f.Until) {
		return false
	}
	for k, v := range f.Labels {
		var have string
		switch k {
		case "application_name":
			have = b.ApplicationName
		case "pid":
			have = strconv.Itoa(b.PID)
		case "hostname":
			have = b.Hostname
		default:
			var ok bool
			if have, ok = b.Labels[k]; !ok {
				return false
			}
		}
		if have != v {
			return false
		}
	}
	return true
}

// ReadBatches reads the agent batches in dir (STEM.json beside STEM.pb.gz)
// that f keeps, and merges their profiles into one. Sample types missing from
// some batches (wall, when off-CPU was off for a period) are dropped first.
func ReadBatches(dir string, f BatchFilter) (*profile.Profile, error) {
	sidecars, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list batches in %s: %w", dir, err)
	}
	sort.Strings(sidecars)
	var ps []*profile.Profile
	for _, sc := range sidecars {
		data, err := os.ReadFile(sc)
		if err != nil {
			return nil, err
		}
		var b Batch
		if err := json.Unmarshal(data, &b); err != nil {
			return nil, fmt.Errorf("read %s: %w", sc, err)
		}
		if !b.keep(f) {
			continue
		}
		p, err := ReadFile(strings.TrimSuffix(sc, ".json") + ".pb.gz")
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("read %s: no agent batches (STEM.json and STEM.pb.gz) match", dir)
	}
	p, err := Merge(ps)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	return p, nil
}

// Merge merges profiles into one, keeping only the sample types they share.
func Merge(ps []*profile.Profile) (*profile.Profile, error) {
	if len(ps) == 1 {
		return ps[0], nil
	}
	if err := profile.CompatibilizeSampleTypes(ps); err != nil {
		return nil, fmt.Errorf("merge profiles: %w", err)
	}
	p, err := profile.Merge(ps)
	if err != nil {
		return nil, fmt.Errorf("merge profiles: %w", err)
	}
	return p, nil
}
