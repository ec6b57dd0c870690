package export

import "github.com/google/pprof/profile"

// AddLabels adds string labels to p's samples by process: labels(pid) gives
// those of the process in a sample's numeric pid label (nil or empty for
// none). Labels a sample has already are kept: these describe the process,
// its own say more.
//
// Labels that describe a whole process (its container, its pod) are added
// after the profile is built rather than per sample as it is taken: they are
// read once per process, not once per sample.
func AddLabels(p *profile.Profile, labels func(pid int) map[string]string) {
	for _, s := range p.Sample {
		pid := s.NumLabel["pid"]
		if len(pid) == 0 {
			continue
		}
		m := labels(int(pid[0]))
		if len(m) == 0 {
			continue
		}
		if s.Label == nil {
			s.Label = map[string][]string{}
		}
		for k, v := range m {
			if _, ok := s.Label[k]; !ok {
				s.Label[k] = []string{v}
			}
		}
	}
}
