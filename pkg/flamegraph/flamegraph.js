// Zoom, search and details for a bprof flame graph, in an SVG file or an HTML page.
// The drawn frames are the <g> children of #frames, in the order of data.rects.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("bprof-data").textContent);
  var R = data.rects, S = data.strings;
  var groups = document.getElementById("frames").children;
  var rects = [], texts = [], index = new Map();
  for (var i = 0; i < groups.length; i++) {
    rects.push(groups[i].querySelector("rect"));
    texts.push(groups[i].querySelector("text"));
    index.set(groups[i], i);
  }
  var full = data.width - 2 * data.pad;
  var details = document.getElementById("details");
  var matched = document.getElementById("matched");
  var reset = document.getElementById("reset");
  var searchBtn = document.getElementById("search");
  var searchInput = document.getElementById("search-input");
  var zoomed = 0;

  function fit(s, w) {
    var n = Math.floor((w - 6) / data.charWidth);
    if (n < 3) return "";
    var cs = Array.from(s);
    return cs.length <= n ? s : cs.slice(0, n - 2).join("") + "..";
  }

  function place(j, x, w) {
    var r = rects[j];
    r.setAttribute("x", x.toFixed(1));
    r.setAttribute("width", w.toFixed(1));
    texts[j].setAttribute("x", (x + 3).toFixed(1));
    texts[j].textContent = fit(S[R[j][3]], w);
    groups[j].classList.remove("hide");
  }

  // zoom makes rect i span the full width, its ancestors too (faded),
  // and hides what is neither its ancestor nor its descendant.
  function zoom(i) {
    zoomed = i;
    var s = R[i][0], e = s + R[i][1], d = R[i][2], k = full / R[i][1];
    for (var j = 0; j < R.length; j++) {
      var sj = R[j][0], ej = sj + R[j][1], dj = R[j][2];
      if (dj >= d && sj >= s && ej <= e) {
        place(j, data.pad + (sj - s) * k, (ej - sj) * k);
        groups[j].classList.remove("anc");
      } else if (dj < d && sj <= s && ej >= e) {
        place(j, data.pad, full);
        groups[j].classList.add("anc");
      } else {
        groups[j].classList.add("hide");
      }
    }
    if (reset) reset.classList.toggle("off", i === 0);
  }

  // search marks the frames whose label matches re and reports the share of
  // samples under a match, each sample counted once however many frames match.
  function search(re) {
    var rx = null;
    if (re) {
      try { rx = new RegExp(re); } catch (err) { matched.textContent = "Bad regex: " + err.message; return; }
    }
    var sum = 0, coveredUntil = -1;
    for (var j = 0; j < R.length; j++) {
      var m = rx !== null && rx.test(S[R[j][4]]);
      groups[j].classList.toggle("match", m);
      // Rects are in depth-first pre-order: a rect that starts before the end of
      // the last counted match lies inside it.
      if (m && R[j][0] >= coveredUntil) {
        sum += R[j][1];
        coveredUntil = R[j][0] + R[j][1];
      }
    }
    matched.textContent = rx === null ? "" : "Matched: " + (100 * sum / R[0][1]).toFixed(1) + "%";
    if (searchBtn) searchBtn.textContent = rx === null ? "Search" : "Clear";
    return sum;
  }

  var frames = document.getElementById("frames");
  frames.addEventListener("click", function (ev) {
    var g = ev.target.closest("g");
    if (g && index.has(g)) zoom(index.get(g));
  });
  frames.addEventListener("mouseover", function (ev) {
    var g = ev.target.closest("g");
    if (!g || !index.has(g) || !details) return;
    details.textContent = g.querySelector("title").textContent.split("\n").join("  |  ");
  });
  frames.addEventListener("mouseout", function () { if (details) details.textContent = " "; });
  if (reset) reset.addEventListener("click", function () { zoom(0); });
  if (searchBtn) searchBtn.addEventListener("click", function () {
    if (searchBtn.textContent === "Clear") { search(""); return; }
    var re = window.prompt("Search frames (regular expression):", "");
    if (re) search(re);
  });
  if (searchInput) searchInput.addEventListener("input", function () { search(searchInput.value); });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { zoom(0); search(""); if (searchInput) searchInput.value = ""; }
  });
  window.bprof = { zoom: zoom, search: search, reset: function () { zoom(0); } };
})();
