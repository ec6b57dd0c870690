package flamegraph

import (
	"hash/fnv"
	"math"
)

// palette is a range of hues, a saturation and lightnesses for one frame kind.
type palette struct {
	hueLo, hueHi float64
	sat          float64
	lightLo      float64
	lightHi      float64
}

var palettes = [numKinds]palette{
	Native: {hueLo: 8, hueHi: 42, sat: 0.85, lightLo: 0.55, lightHi: 0.65},
	Python: {hueLo: 90, hueHi: 140, sat: 0.50, lightLo: 0.50, lightHi: 0.62},
	Kernel: {hueLo: 195, hueHi: 225, sat: 0.60, lightLo: 0.62, lightHi: 0.72},
	OffCPU: {hueLo: 265, hueHi: 290, sat: 0.35, lightLo: 0.68, lightHi: 0.76},
	Pseudo: {hueLo: 0, hueHi: 0, sat: 0, lightLo: 0.72, lightHi: 0.80},
}

// kindColor is a colour for a frame of kind k named name: the hue comes from
// the kind, its shade from a hash of the name, so a function keeps its colour.
func kindColor(k Kind, name string) uint32 {
	if k >= numKinds {
		k = Native
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	v := float64(h.Sum32()%1000) / 999
	p := palettes[k]
	return hsl(p.hueLo+v*(p.hueHi-p.hueLo), p.sat, p.lightLo+(1-v)*(p.lightHi-p.lightLo))
}

// legendColor is the colour of kind k in the legend.
func legendColor(k Kind) uint32 {
	p := palettes[k]
	return hsl((p.hueLo+p.hueHi)/2, p.sat, (p.lightLo+p.lightHi)/2)
}

// diffColor is red for growth and blue for shrinkage, stronger as |delta|
// approaches maxDelta; white for no change.
func diffColor(delta, maxDelta float64) uint32 {
	if maxDelta <= 0 || delta == 0 {
		return 0xffffff
	}
	x := math.Min(math.Abs(delta)/maxDelta, 1)
	c := uint32(235 - 200*x)
	if delta > 0 {
		return 0xff<<16 | c<<8 | c
	}
	return c<<16 | c<<8 | 0xff
}

func hsl(h, s, l float64) uint32 {
	c := (1 - math.Abs(2*l-1)) * s
	hp := math.Mod(h, 360) / 60
	x := c * (1 - math.Abs(math.Mod(hp, 2)-1))
	var r, g, b float64
	switch {
	case hp < 1:
		r, g = c, x
	case hp < 2:
		r, g = x, c
	case hp < 3:
		g, b = c, x
	case hp < 4:
		g, b = x, c
	case hp < 5:
		r, b = x, c
	default:
		r, b = c, x
	}
	m := l - c/2
	to := func(v float64) uint32 { return uint32(math.Round((v + m) * 255)) }
	return to(r)<<16 | to(g)<<8 | to(b)
}
