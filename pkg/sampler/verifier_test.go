package sampler

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/cilium/ebpf"
)

// The verifier's work is most of bprof's start-up: each program's processed
// instructions stay within a budget. A walker inlined into its callers
// again, or walk state back on the stack, multiplies them (64,000-70,000
// each before 2026-12-02; 4,000-8,000 since).
func TestVerifierBudget(t *testing.T) {
	testenv.RequireRoot(t)
	spec, err := loadProfile()
	if err != nil {
		t.Fatal(err)
	}
	spec.Maps["unwind_rows"].MaxEntries = 1024 // the budget is the programs', not the maps'
	processed := regexp.MustCompile(`processed (\d+) insns`)
	for _, tt := range []struct {
		prog   string
		budget int
	}{
		{"bprof_cpu", 12000},
		{"bprof_switch", 20000},
		{"bprof_alloc", 12000},
	} {
		t.Run(tt.prog, func(t *testing.T) {
			one := &ebpf.CollectionSpec{Maps: spec.Maps, Programs: map[string]*ebpf.ProgramSpec{tt.prog: spec.Programs[tt.prog]},
				Types: spec.Types, Variables: spec.Variables}
			coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			log := coll.Programs[tt.prog].VerifierLog
			m := processed.FindStringSubmatch(log)
			if m == nil {
				t.Fatalf("no instruction count in the verifier's log: %q", log)
			}
			n, _ := strconv.Atoi(m[1])
			t.Logf("%s: %d instructions processed", tt.prog, n)
			if n > tt.budget {
				t.Errorf("the verifier processed %d instructions of %s, over its budget of %d", n, tt.prog, tt.budget)
			}
		})
	}
}
