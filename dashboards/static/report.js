// The report page's script (a file of its own: the pages' Content-Security-Policy allows
// no inline script).
"use strict";
document.getElementById("print").addEventListener("click", () => window.print());
// Lows listed inline, at most this many: the report must stay on one A4 page.
const MAX_LOWS = 24;
(async () => {
  const data = await GB.load("report");
  if (!data) return;
  await Promise.all([GB.plot("fig-agp", data.figures.agp), GB.plot("fig-bands", data.figures.bands)]);
  GB.table("metrics", data.metrics, [["metric", "metric"], ["this", "this_period"],
    ["previous", "previous_period"], ["change", "difference"]]);
  const lows = data.lows.slice(0, MAX_LOWS).map((r) => `${r.time} (${r.glucose})`);
  const more = data.lows.length - lows.length;
  document.getElementById("lows").textContent =
    (lows.join(" · ") || "–") + (more > 0 ? ` … +${more}` : "");
  GB.ready();
})();
