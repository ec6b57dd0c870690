package flamegraph

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// The script and style shared by the SVG and the HTML page; both are ours.
var (
	//go:embed flamegraph.js
	script string
	//go:embed flamegraph.css
	style string
)

// WriteSVG writes s as a self-contained interactive flame graph: a tooltip
// per frame, click to zoom, search by regular expression with the share of
// samples matched, colours by frame kind with a legend. Its size is bounded
// by cfg.MinWidth, not by the number of stacks.
func WriteSVG(w io.Writer, s *Stacks, cfg Config) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	writeSVG(bw, newGraph(s, cfg), true)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	return nil
}

// writeSVG writes the <svg> element. A standalone SVG carries its own buttons,
// data and script; inside an HTML page those live in the page.
func writeSVG(w *bufio.Writer, g *graph, standalone bool) {
	h := g.height()
	if standalone {
		w.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="no"?>` + "\n")
	}
	fmt.Fprintf(w, `<svg id="bprof-svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg">`+"\n",
		int(imageWidth), h, int(imageWidth), h)
	if standalone {
		fmt.Fprintf(w, "<style><![CDATA[\n%s]]></style>\n", style)
	}
	fmt.Fprintf(w, `<rect x="0" y="0" width="%d" height="%d" fill="#f8f8f4"/>`+"\n", int(imageWidth), h)
	fmt.Fprintf(w, `<text class="title" x="%.0f" y="22" text-anchor="middle">%s</text>`+"\n", imageWidth/2, esc(g.title()))
	fmt.Fprintf(w, `<text class="sub" x="%.0f" y="40" text-anchor="middle">%s</text>`+"\n", imageWidth/2, esc(g.subtitle()))
	if standalone {
		fmt.Fprintf(w, `<text id="reset" class="btn off" x="%.0f" y="22">Reset Zoom</text>`+"\n", sidePad)
		fmt.Fprintf(w, `<text id="search" class="btn" x="%.0f" y="22" text-anchor="end">Search</text>`+"\n", imageWidth-sidePad)
	}
	w.WriteString(`<g id="frames">` + "\n")
	var buf []byte
	for i := range g.rects {
		r := &g.rects[i]
		x, wd := g.xw(r)
		y := g.y(r.depth)
		name, _ := g.name(r)
		buf = append(buf[:0], "<g><title>"...)
		buf = appendEsc(buf, g.tooltip(r))
		buf = fmt.Appendf(buf, `</title><rect x="%.1f" y="%d" width="%.1f" height="%d" rx="1" fill="#%06x"/><text x="%.1f" y="%d">`,
			x, y, wd, frameHeight-1, g.color(r), x+3, y+frameHeight-4)
		buf = appendEsc(buf, fitText(name, wd))
		buf = append(buf, "</text></g>\n"...)
		w.Write(buf)
	}
	w.WriteString("</g>\n")
	base := h - bottomPad
	if standalone {
		fmt.Fprintf(w, `<text id="details" x="%.0f" y="%d"> </text>`+"\n", sidePad, base+18)
		fmt.Fprintf(w, `<text id="matched" x="%.0f" y="%d" text-anchor="end"></text>`+"\n", imageWidth-sidePad, base+18)
	}
	writeLegend(w, g, base+40)
	if standalone {
		w.WriteString(`<script type="application/json" id="bprof-data"><![CDATA[`)
		writeData(w, g)
		w.WriteString("]]></script>\n")
		fmt.Fprintf(w, "<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n", script)
	}
	w.WriteString("</svg>\n")
}

// writeData writes the script's data as JSON; encoding/json escapes <, > and &,
// so the text can end neither a CDATA section nor an HTML script element.
func writeData(w io.Writer, g *graph) {
	json.NewEncoder(w).Encode(g.scriptData())
}

func writeLegend(w *bufio.Writer, g *graph, y int) {
	type item struct {
		color uint32
		text  string
	}
	var items []item
	if g.cfg.Base != nil {
		items = []item{{diffColor(1, 1), "grew"}, {diffColor(0.3, 1), "grew a little"}, {0xffffff, "no change"},
			{diffColor(-0.3, 1), "shrank a little"}, {diffColor(-1, 1), "shrank"}}
	} else {
		for k := Kind(0); k < numKinds; k++ {
			items = append(items, item{legendColor(k), k.String()})
		}
		items = append(items, item{0xe600e6, "search match"})
	}
	x := sidePad
	w.WriteString(`<g class="legend">` + "\n")
	for _, it := range items {
		fmt.Fprintf(w, `<rect x="%.0f" y="%d" width="12" height="12" fill="#%06x" stroke="#888" stroke-width="0.5"/><text x="%.0f" y="%d">%s</text>`+"\n",
			x, y-10, it.color, x+16, y, esc(it.text))
		x += 16 + float64(len(it.text))*7 + 18
	}
	w.WriteString("</g>\n")
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func appendEsc(dst []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '"':
			dst = append(dst, "&#34;"...)
		case '\n':
			dst = append(dst, "&#xA;"...)
		default:
			if c < 0x20 && c != '\t' {
				dst = append(dst, ' ') // not allowed in XML 1.0
				continue
			}
			dst = append(dst, c)
		}
	}
	return dst
}
