package profiler

import (
	"slices"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/sampler"
	"github.com/bprof/bprof/pkg/symbolize"
)

// stackMemo remembers, for each raw stack the sampler reported (the
// addresses and code objects it read, and its flags), the export.Stack its
// frames were named to. A busy thread is sampled at a few hundred distinct
// raw stacks a minute, so most samples are one lookup here rather than
// naming 20 to 90 frames and finding each one's location: that was most of
// record's steady CPU.
//
// What a raw stack is named to depends on more than the stack: the
// processes' mappings and attached interpreters (the symbolizers' Changes,
// which empty the memo when they move; so does a Cut, whose Builder the
// Stacks were of, and which they would otherwise keep alive) and, for the Python frames the walker
// took from its cache, whether their code objects still held them after the
// sample (asked again at each hit: symbolize.Python.StillHeld). Stacks with a
// frame that could not be named (symbolize.Frame.Unnamed), which a later
// attempt may name, are not kept.
//
// A stackMemo is used by the goroutine that reads the samples only.
type stackMemo struct {
	entries map[uint64]*memoEntry // by hashWords of the raw stack
	size    int
	key     []uint64 // the raw stack being looked up
	gen     memoGen  // what the entries were made at
}

// memoGen is what the memo's entries hold for: the symbolizers' Changes and
// the Session's Cuts.
type memoGen struct {
	native, python, cuts uint64
}

type memoEntry struct {
	raw   []uint64
	stack *export.Stack
	next  *memoEntry // another raw stack of the same hash
}

// maxMemoStacks bounds the memo: when full it starts again. An entry holds
// its raw stack (~0.5 KB for 16 Python and 25 native frames).
const maxMemoStacks = 4096

func newStackMemo() *stackMemo {
	return &stackMemo{entries: map[uint64]*memoEntry{}}
}

// find returns smp's entry, or nil. It empties the memo first when gen
// moved since the entries were made. smp's raw stack stays in m.key for a
// put.
func (m *stackMemo) find(smp *sampler.Sample, gen memoGen) *memoEntry {
	if gen != m.gen {
		m.reset()
		m.gen = gen
	}
	m.key = rawStack(m.key[:0], smp)
	for e := m.entries[hashWords(m.key)]; e != nil; e = e.next {
		if slices.Equal(e.raw, m.key) {
			return e
		}
	}
	return nil
}

// put remembers st for the raw stack of the last find, made at the gen
// given to it.
func (m *stackMemo) put(st *export.Stack) {
	if m.size >= maxMemoStacks {
		m.reset()
	}
	h := hashWords(m.key)
	m.entries[h] = &memoEntry{raw: slices.Clone(m.key), stack: st, next: m.entries[h]}
	m.size++
}

func (m *stackMemo) reset() {
	clear(m.entries)
	m.size = 0
}

// rawStack appends to k what naming smp depends on: its process, flags and
// stacks as the sampler read them.
func rawStack(k []uint64, smp *sampler.Sample) []uint64 {
	k = append(k, uint64(smp.PID), uint64(smp.Flags),
		uint64(len(smp.Kernel))<<32|uint64(len(smp.User)), uint64(len(smp.Python)))
	k = append(k, smp.Kernel...)
	k = append(k, smp.User...)
	for _, r := range smp.Python {
		info := uint64(uint32(r.Instr))
		if r.Entry {
			info |= 1 << 32
		}
		if r.Cached {
			info |= 1 << 33
		}
		k = append(k, r.Code, r.Check, info)
	}
	return k
}

// hashWords is FNV-1a over words, with a shift that mixes the high bits
// of each into the low ones a map's buckets use.
func hashWords(w []uint64) uint64 {
	h := uint64(14695981039346656037)
	for _, x := range w {
		h ^= x
		h *= 1099511628211
		h ^= h >> 32
	}
	return h
}

// memoizable reports whether frames are a naming that a later attempt
// would give again: none is Unnamed.
func memoizable(frames []symbolize.Frame) bool {
	for i := range frames {
		if frames[i].Unnamed() {
			return false
		}
	}
	return true
}
