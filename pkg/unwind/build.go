package unwind

// build puts the FDEs' rows, made in address order, into the table: the
// KindNone row closing each FDE goes when the next starts right there, an
// FDE that starts inside the previous one cuts it short, and equal
// neighbours are merged. The table is made in place in p.rows: it only ever
// drops rows, so it never writes past what it has read.
func (p *parser) build() {
	out := p.rows[:0]
	var prevEnd uint64
	for i, f := range p.fdes {
		if i > 0 && f.start < prevEnd {
			p.t.Overlaps++
		}
		// Drop what earlier FDEs said from f.start on, their closing
		// KindNone rows included: f wins there. Each row is dropped at
		// most once.
		for len(out) > 0 && out[len(out)-1].PC >= f.start {
			out = out[:len(out)-1]
		}
		out = append(out, p.rows[f.first:f.first+f.n]...)
		prevEnd = f.end
	}
	merged := out[:0]
	for _, row := range out {
		if len(merged) > 0 && sameRule(merged[len(merged)-1], row) {
			continue
		}
		merged = append(merged, row)
	}
	p.t.Rows = merged
	p.rows, p.fdes = nil, nil
}
