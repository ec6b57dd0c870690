package export

import (
	"encoding/binary"
	"slices"

	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/google/pprof/profile"
)

// Stack is a sample's stack as locations of one Builder, found once. A
// caller that sees the same stack again and again (a busy loop is sampled
// at a handful of stacks) keeps the Stack and adds samples by it
// (AddCPUStack), which skips naming the frames and looking up each one's
// location: most of the cost of a sample.
type Stack struct {
	b    *Builder
	locs []*profile.Location
}

// Stack returns the Stack of frames (leaf first). Equal frames give the same
// Stack.
func (b *Builder) Stack(frames []symbolize.Frame) *Stack {
	b.locs = b.locs[:0]
	for i := range frames {
		b.locs = append(b.locs, b.location(&frames[i]))
	}
	return b.intern(b.locs)
}

// Holds reports whether st is one of b's Stacks: Stacks of an earlier
// Builder (an earlier period) must be found again.
func (b *Builder) Holds(st *Stack) bool { return st != nil && st.b == b }

// intern returns the one Stack of locs.
func (b *Builder) intern(locs []*profile.Location) *Stack {
	b.key = b.key[:0]
	for _, loc := range locs {
		b.key = binary.AppendUvarint(b.key, loc.ID)
	}
	if st, ok := b.stacks[string(b.key)]; ok {
		return st
	}
	st := &Stack{b: b, locs: slices.Clone(locs)}
	b.stacks[string(b.key)] = st
	return st
}
