// The report page's script (a file of its own: the pages' Content-Security-Policy allows
// no inline script). Everything shown comes formatted from the API (core's typed report);
// this lays it out as the AGP Report one-pager and keeps the print layout independent of
// the window: the figures are redrawn at the A4 page's width when printing.
"use strict";
document.getElementById("print").addEventListener("click", () => window.print());
// A4 (210 mm) less 10 mm margins each side is 190 mm: 718 CSS pixels.
const PRINT_WIDTH = 718;
const FIGURES = ["fig-agp", "fig-days"];

async function fit(printing) {
  for (const id of FIGURES) {
    const el = document.getElementById(id);
    if (!el || !el.data) continue;
    const width = printing ? PRINT_WIDTH : el.parentElement.clientWidth - 2;
    await Plotly.relayout(el, { width });
  }
  document.body.dataset.print = printing ? "ready" : "screen";
}

(async () => {
  const data = await GB.load("report");
  if (!data) return;
  const L = GB.L;
  document.title = `${data.name} · ${L.report_page} · ${data.printed}`;
  document.getElementById("identity").textContent =
    `${data.name} · ${L.identifier} ${data.identifier} · ${L.period} ${data.period} · ${L.printed} ${data.printed}`;
  if (!data.stats) { document.querySelector(".top").hidden = true; GB.ready(); return; }
  const stats = document.getElementById("stats");
  const body = document.createElement("tbody");
  for (const r of data.stats) {
    const tr = document.createElement("tr"); tr.dataset.key = r.key;
    const th = document.createElement("th"); th.scope = "row"; th.textContent = r.label;
    const td = document.createElement("td"); td.className = "value"; td.textContent = r.value;
    const goal = document.createElement("td"); goal.className = "target";
    if (r.target) goal.textContent = `${L.target} ${r.target}`;
    if (r.met === false) td.classList.add("missed");
    tr.append(th, td, goal); body.appendChild(tr);
  }
  stats.appendChild(body);
  document.getElementById("bands-title").textContent = data.bands_title;
  GB.tir("tir", data.bands);
  if (data.agp_left_out) {
    const note = document.getElementById("agp-left-out");
    note.textContent = data.agp_left_out; note.hidden = false;
    document.getElementById("fig-agp").remove();
  }
  await Promise.all(FIGURES.filter((id) => document.getElementById(id) && data.figures[id.slice(4)])
    .map((id) => GB.plot(id, data.figures[id.slice(4)])));
  if (data.meter) {
    document.getElementById("meter").hidden = false;
    GB.table("meter-table", data.meter, [["what", "meal"], ["readings", "readings"], ["mean", "mean"],
      ["in_target", "in_target"], ["target", "target"]]);
  }
  GB.table("metrics", data.change, [["metric", "metric"], ["this", "this_period"],
    ["previous", "previous_period"], ["change", "difference"]]);
  const print = window.matchMedia("print");
  print.addEventListener("change", (e) => fit(e.matches));
  window.addEventListener("beforeprint", () => fit(true));
  window.addEventListener("afterprint", () => fit(false));
  await fit(print.matches);
  GB.ready();
})();
