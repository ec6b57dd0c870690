package flamegraph

import (
	"fmt"
	"math"
	"strings"
)

// Geometry of the image, in pixels.
const (
	imageWidth  = 1200.0
	sidePad     = 10.0
	frameHeight = 16
	topPad      = 56 // title, subtitle and buttons
	bottomPad   = 52 // details line and legend
	fontSize    = 12
	charWidth   = 0.6 * fontSize // the font is monospace, so labels can be cut to fit
)

// graph is a laid out flame graph, shared by the SVG and HTML writers.
type graph struct {
	s         *Stacks
	cfg       Config
	t         *tree
	rects     []rect
	maxDepth  int32
	min       int64 // narrowest value drawn
	baseTotal int64 // diff: all samples of the base
	maxDelta  float64
}

func newGraph(s *Stacks, cfg Config) *graph {
	g := &graph{s: s, cfg: cfg, t: buildTree(s)}
	g.min = cfg.MinWidth.threshold(s.Total, imageWidth-2*sidePad)
	var base []int32
	var bt *tree
	if cfg.Base != nil {
		bt = buildTree(cfg.Base)
		base = baseNodes(g.t, s.Frames, bt, cfg.Base.Frames)
		g.baseTotal = cfg.Base.Total
	}
	g.rects = layout(g.t, g.min, base, bt)
	for i := range g.rects {
		r := &g.rects[i]
		if r.depth > g.maxDepth {
			g.maxDepth = r.depth
		}
		if cfg.Base != nil {
			g.maxDelta = math.Max(g.maxDelta, math.Abs(g.delta(r)))
		}
	}
	return g
}

// delta is the change of a rect's share of all samples, from base to new.
func (g *graph) delta(r *rect) float64 {
	if g.baseTotal == 0 {
		return 0
	}
	return float64(r.total)/float64(g.s.Total) - float64(r.base)/float64(g.baseTotal)
}

func (g *graph) height() int {
	return topPad + int(g.maxDepth+1)*frameHeight + bottomPad
}

func (g *graph) title() string {
	if g.cfg.Title != "" {
		return g.cfg.Title
	}
	switch {
	case g.cfg.Base != nil:
		return "Differential Flame Graph"
	case g.cfg.Inverted:
		return "Icicle Graph"
	}
	return "Flame Graph"
}

func (g *graph) subtitle() string {
	sub := fmt.Sprintf("%s: %s in %d samples", g.s.Type, FormatValue(g.s.Total, g.s.Unit), len(g.s.Samples))
	if g.cfg.Base != nil {
		sub += fmt.Sprintf("; base %s. Red grew, blue shrank (share of all samples)", FormatValue(g.baseTotal, g.s.Unit))
	}
	if g.min > 1 {
		sub += fmt.Sprintf("; frames under %s merged into their parent", g.cfg.MinWidth)
	}
	return sub
}

// frame returns the frame of a rect, and false for the root and narrow rects.
func (g *graph) frame(r *rect) (Frame, bool) {
	if r.node <= 0 {
		return Frame{}, false
	}
	return g.s.Frames[g.t.frame[r.node]], true
}

// name is the text drawn in the rect; label is what search matches.
func (g *graph) name(r *rect) (name, label string) {
	if f, ok := g.frame(r); ok {
		return f.Name, f.Label()
	}
	if r.node == 0 {
		return "all", "all"
	}
	n := fmt.Sprintf("[%d narrow frames]", r.narrow)
	return n, n
}

func (g *graph) kind(r *rect) Kind {
	if f, ok := g.frame(r); ok {
		return f.Kind
	}
	return Pseudo
}

func (g *graph) color(r *rect) uint32 {
	if g.cfg.Base != nil {
		return diffColor(g.delta(r), g.maxDelta)
	}
	name, _ := g.name(r)
	return kindColor(g.kind(r), name)
}

// tooltip is the text shown for a rect: name, position, value and share.
func (g *graph) tooltip(r *rect) string {
	var b strings.Builder
	name, _ := g.name(r)
	b.WriteString(name)
	if f, ok := g.frame(r); ok {
		if pos := f.Position(); pos != "" {
			b.WriteString("\n" + pos)
		}
		fmt.Fprintf(&b, "\n%s frame", f.Kind)
	}
	fmt.Fprintf(&b, "\n%s, %s", FormatValue(r.total, g.s.Unit), percent(r.total, g.s.Total))
	if r.self > 0 && r.node > 0 {
		fmt.Fprintf(&b, " (self %s)", FormatValue(r.self, g.s.Unit))
	}
	if r.node < 0 {
		fmt.Fprintf(&b, "\nframes narrower than %s, merged", g.cfg.MinWidth)
	}
	if g.cfg.Base != nil {
		fmt.Fprintf(&b, "\nbase %s, %s; change %+.2f points of share",
			FormatValue(r.base, g.s.Unit), percent(r.base, g.baseTotal), 100*g.delta(r))
	}
	return b.String()
}

// x and width of a rect in pixels, unzoomed.
func (g *graph) xw(r *rect) (x, w float64) {
	scale := (imageWidth - 2*sidePad) / float64(g.s.Total)
	return sidePad + float64(r.start)*scale, float64(r.total) * scale
}

func (g *graph) y(depth int32) int {
	if g.cfg.Inverted {
		return topPad + int(depth)*frameHeight
	}
	return topPad + int(g.maxDepth-depth)*frameHeight
}

// fitText cuts s to fit w pixels, the same way the script does after a zoom.
func fitText(s string, w float64) string {
	n := int((w - 6) / charWidth)
	if n < 3 {
		return ""
	}
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n-2]) + ".."
}

// scriptData is what the script needs to zoom and search: per rect
// [start, total, depth, name index, label index], and the strings.
type scriptData struct {
	Width    float64    `json:"width"`
	Pad      float64    `json:"pad"`
	CharW    float64    `json:"charWidth"`
	Inverted bool       `json:"inverted"`
	Rects    [][5]int64 `json:"rects"`
	Strings  []string   `json:"strings"`
}

func (g *graph) scriptData() scriptData {
	d := scriptData{Width: imageWidth, Pad: sidePad, CharW: charWidth, Inverted: g.cfg.Inverted,
		Rects: make([][5]int64, len(g.rects))}
	ids := make(map[string]int64)
	str := func(s string) int64 {
		id, ok := ids[s]
		if !ok {
			id = int64(len(d.Strings))
			ids[s] = id
			d.Strings = append(d.Strings, s)
		}
		return id
	}
	for i := range g.rects {
		r := &g.rects[i]
		name, label := g.name(r)
		d.Rects[i] = [5]int64{r.start, r.total, int64(r.depth), str(name), str(label)}
	}
	return d
}
