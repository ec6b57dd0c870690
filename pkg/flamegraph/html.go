package flamegraph

import (
	"bufio"
	"fmt"
	"io"
	"sort"
)

// topRows is how many functions the HTML table lists.
const topRows = 500

// WriteHTML writes s as one HTML page that works offline: the flame graph of
// WriteSVG with a search box, and a table of the top functions by self and
// total value that sorts on a click on its header.
func WriteHTML(w io.Writer, s *Stacks, cfg Config) error {
	g := newGraph(s, cfg)
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s</title>
<style>
body { font: 13px sans-serif; margin: 12px; background: #fff; }
#bar { display: flex; gap: 12px; align-items: center; margin-bottom: 6px; }
#search-input { width: 320px; }
#details { font: 12px monospace; min-height: 1.4em; white-space: pre; }
#bprof-svg { max-width: 100%%; height: auto; }
table { border-collapse: collapse; margin-top: 16px; }
th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { cursor: pointer; background: #eee; user-select: none; }
.off { display: none; }
%s</style></head><body>
<div id="bar"><input id="search-input" type="search" placeholder="search frames (regular expression)" aria-label="search">
<span id="matched"></span><button id="reset" class="off" type="button">Reset zoom</button></div>
`, esc(g.title()), style)
	writeSVG(bw, g, false)
	bw.WriteString(`<div id="details"> </div>` + "\n")
	writeTable(bw, s)
	bw.WriteString(`<script type="application/json" id="bprof-data">`)
	writeData(bw, g)
	fmt.Fprintf(bw, "</script>\n<script>\n%s</script>\n%s</body></html>\n", script, tableScript)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}

// funcStat is a function's value when it is the leaf (self) and anywhere in
// the stack (total, each sample counted once even in recursion).
type funcStat struct {
	frame       int32
	self, total int64
}

func topFunctions(s *Stacks) []funcStat {
	stats := make([]funcStat, len(s.Frames))
	seen := make([]int, len(s.Frames)) // sample number + 1 that last counted the frame
	for i := range stats {
		stats[i].frame = int32(i)
	}
	for n, smp := range s.Samples {
		for _, f := range smp.Stack {
			if seen[f] != n+1 {
				seen[f] = n + 1
				stats[f].total += smp.Value
			}
		}
		if len(smp.Stack) > 0 {
			stats[smp.Stack[len(smp.Stack)-1]].self += smp.Value
		}
	}
	sort.Slice(stats, func(i, j int) bool {
		if stats[i].total != stats[j].total {
			return stats[i].total > stats[j].total
		}
		return stats[i].self > stats[j].self
	})
	if len(stats) > topRows {
		stats = stats[:topRows]
	}
	return stats
}

func writeTable(w *bufio.Writer, s *Stacks) {
	w.WriteString(`<table id="top"><thead><tr><th data-k="s">function</th><th data-k="s">where</th><th data-k="s">kind</th>` +
		`<th data-k="n">self</th><th data-k="n">self %</th><th data-k="n">total</th><th data-k="n">total %</th></tr></thead><tbody>` + "\n")
	for _, st := range topFunctions(s) {
		f := s.Frames[st.frame]
		fmt.Fprintf(w, `<tr><td>%s</td><td>%s</td><td>%s</td><td class="n" data-v="%d">%s</td><td class="n" data-v="%d">%s</td><td class="n" data-v="%d">%s</td><td class="n" data-v="%d">%s</td></tr>`+"\n",
			esc(f.Name), esc(f.Position()), esc(f.Kind.String()),
			st.self, esc(FormatValue(st.self, s.Unit)), st.self, percent(st.self, s.Total),
			st.total, esc(FormatValue(st.total, s.Unit)), st.total, percent(st.total, s.Total))
	}
	w.WriteString("</tbody></table>\n")
}

// tableScript sorts the table of top functions on a click on a column header:
// numbers by their data-v value, text by its content; a second click reverses.
const tableScript = `<script>
(function () {
  "use strict";
  var table = document.getElementById("top");
  var body = table.tBodies[0];
  var ths = table.tHead.rows[0].cells;
  var state = { col: 5, desc: true };
  function key(row, col, numeric) {
    var c = row.cells[col];
    return numeric ? Number(c.getAttribute("data-v")) : c.textContent;
  }
  Array.prototype.forEach.call(ths, function (th, col) {
    th.addEventListener("click", function () {
      var numeric = th.getAttribute("data-k") === "n";
      state.desc = state.col === col ? !state.desc : numeric;
      state.col = col;
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, col, numeric), y = key(b, col, numeric);
        var c = x < y ? -1 : x > y ? 1 : 0;
        return state.desc ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
</script>
`
