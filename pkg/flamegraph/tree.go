package flamegraph

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// tree merges the stacks into a call tree. Node 0 is the root; a node's parent
// always has a smaller index.
type tree struct {
	frame    []int32 // index into Stacks.Frames; -1 for the root
	parent   []int32
	total    []int64
	self     []int64
	children [][]int32 // ordered by frame label
}

func nodeKey(parent, frame int32) uint64 { return uint64(uint32(parent))<<32 | uint64(uint32(frame)) }

func buildTree(s *Stacks) *tree {
	t := &tree{frame: []int32{-1}, parent: []int32{-1}, total: []int64{0}, self: []int64{0}}
	index := make(map[uint64]int32)
	for _, smp := range s.Samples {
		n := int32(0)
		t.total[0] += smp.Value
		for _, f := range smp.Stack {
			k := nodeKey(n, f)
			c, ok := index[k]
			if !ok {
				c = int32(len(t.frame))
				index[k] = c
				t.frame = append(t.frame, f)
				t.parent = append(t.parent, n)
				t.total = append(t.total, 0)
				t.self = append(t.self, 0)
			}
			t.total[c] += smp.Value
			n = c
		}
		t.self[n] += smp.Value
	}
	// Order children by label, as flamegraph.pl does: the same stacks always draw the same.
	order := make([]int32, len(s.Frames))
	for i := range order {
		order[i] = int32(i)
	}
	labels := make([]string, len(s.Frames))
	for i, f := range s.Frames {
		labels[i] = f.Label()
	}
	sort.Slice(order, func(i, j int) bool { return labels[order[i]] < labels[order[j]] })
	rank := make([]int32, len(s.Frames))
	for r, f := range order {
		rank[f] = int32(r)
	}
	t.children = make([][]int32, len(t.frame))
	for c := 1; c < len(t.frame); c++ {
		p := t.parent[c]
		t.children[p] = append(t.children[p], int32(c))
	}
	for _, cs := range t.children {
		sort.Slice(cs, func(i, j int) bool { return rank[t.frame[cs[i]]] < rank[t.frame[cs[j]]] })
	}
	return t
}

// baseNodes maps each node of t to the node of base (built from other frames)
// with the same path of frames, or -1.
func baseNodes(t *tree, frames []Frame, base *tree, baseFrames []Frame) []int32 {
	bf := make(map[Frame]int32, len(baseFrames))
	for i, f := range baseFrames {
		bf[f] = int32(i)
	}
	index := make(map[uint64]int32, len(base.frame))
	for c := 1; c < len(base.frame); c++ {
		index[nodeKey(base.parent[c], base.frame[c])] = int32(c)
	}
	out := make([]int32, len(t.frame))
	for c := 1; c < len(t.frame); c++ {
		out[c] = -1
		bp := out[t.parent[c]]
		f, ok := bf[frames[t.frame[c]]]
		if bp < 0 || !ok {
			continue
		}
		if b, ok := index[nodeKey(bp, f)]; ok {
			out[c] = b
		}
	}
	return out
}

// rect is one frame as drawn. Rects are in depth-first pre-order, so a rect's
// ancestors come before it.
type rect struct {
	node   int32 // tree node, or -1 for a "[N narrow frames]" rect
	narrow int   // how many frames a narrow rect stands for
	start  int64 // in sample values, from the left edge
	total  int64
	self   int64
	base   int64 // diff: the base profile's value for the same path
	depth  int32
	parent int32 // index of the parent rect, -1 for the root
}

// layout lays out the tree, dropping nodes whose total is below min into their
// parent; each node's narrow children together become one rect when their sum
// reaches min. base, when not nil, gives each node's node in baseTree.
func layout(t *tree, min int64, base []int32, baseTree *tree) []rect {
	if min < 1 {
		min = 1
	}
	baseTotal := func(n int32) int64 {
		if base == nil {
			return 0
		}
		if n == 0 {
			return baseTree.total[0]
		}
		if b := base[n]; b >= 0 {
			return baseTree.total[b]
		}
		return 0
	}
	var rects []rect
	var walk func(n int32, start int64, depth int32, parent int32)
	walk = func(n int32, start int64, depth int32, parent int32) {
		me := int32(len(rects))
		rects = append(rects, rect{node: n, start: start, total: t.total[n], self: t.self[n],
			base: baseTotal(n), depth: depth, parent: parent})
		x := start
		var narrow rect
		for _, c := range t.children[n] {
			if t.total[c] < min {
				narrow.narrow++
				narrow.total += t.total[c]
				narrow.base += baseTotal(c)
				continue
			}
			walk(c, x, depth+1, me)
			x += t.total[c]
		}
		if narrow.narrow > 1 && narrow.total >= min {
			narrow.node, narrow.start, narrow.depth, narrow.parent = -1, x, depth+1, me
			rects = append(rects, narrow)
		}
	}
	walk(0, 0, 0, -1)
	return rects
}

// MinWidth is the narrowest frame drawn: a fraction of the total, or pixels.
type MinWidth struct {
	Value  float64
	Pixels bool
}

// ParseMinWidth reads "0.001" or "0.1%" (a fraction of all samples) and "2px"
// or a bare number of 1 or more (pixels of the image's width).
func ParseMinWidth(s string) (MinWidth, error) {
	var w MinWidth
	num, pct := strings.CutSuffix(s, "%")
	num, px := strings.CutSuffix(num, "px")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 || v != v || (pct && px) {
		return w, fmt.Errorf("parse min width %q: want a fraction (0.001), a percent (0.1%%) or pixels (1px)", s)
	}
	switch {
	case pct:
		w.Value = v / 100
	case px || v >= 1:
		w.Value, w.Pixels = v, true
	default:
		w.Value = v
	}
	return w, nil
}

func (w MinWidth) String() string {
	if w.Pixels {
		return strconv.FormatFloat(w.Value, 'g', -1, 64) + "px"
	}
	return strconv.FormatFloat(w.Value, 'g', -1, 64)
}

// threshold is the smallest value drawn out of total over widthPx pixels.
func (w MinWidth) threshold(total int64, widthPx float64) int64 {
	f := w.Value
	if w.Pixels {
		f = w.Value / widthPx
	}
	return int64(f * float64(total))
}
