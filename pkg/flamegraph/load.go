package flamegraph

import (
	"fmt"
	"os"

	"github.com/google/pprof/profile"
)

// Load reads each input (a pprof or folded file, or a directory of agent
// batches picked by f), checks that each has sampleType (when not empty), and
// merges them. Errors name the input.
func Load(inputs []string, f BatchFilter, sampleType string) (*profile.Profile, error) {
	var ps []*profile.Profile
	for _, in := range inputs {
		fi, err := os.Stat(in)
		if err != nil {
			return nil, err
		}
		var p *profile.Profile
		if fi.IsDir() {
			p, err = ReadBatches(in, f)
		} else {
			p, err = ReadFile(in)
		}
		if err != nil {
			return nil, err
		}
		if sampleType != "" {
			if _, err := SampleTypeIndex(p, sampleType); err != nil {
				return nil, fmt.Errorf("read %s: %w", in, err)
			}
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no inputs")
	}
	return Merge(ps)
}
