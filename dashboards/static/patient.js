// The patient page's script (a file of its own: the pages' Content-Security-Policy allows
// no inline script).
"use strict";
(async () => {
  const data = await GB.load("patient");
  if (!data) return;
  if (data.agp_left_out) {
    const note = document.getElementById("agp-left-out");
    note.textContent = data.agp_left_out; note.hidden = false;
    document.getElementById("fig-agp").remove();
  }
  if (data.bands) { GB.tir("tir", data.bands); document.getElementById("bands-title").textContent = data.bands_title; }
  await Promise.all([
    GB.plot("fig-today", data.figures.today),
    data.agp_left_out ? null : GB.plot("fig-agp", data.figures.agp),
  ]);
  GB.table("days", data.days, [["date", "date"], ["readings", "readings"], ["mean", "mean"],
    ["min", "min"], ["max", "max"], ["in_range", "in_range"]]);
  GB.table("logbook", data.logbook, [["time", "time"], ["glucose", "glucose"],
    ["meal", "meal"], ["carbs", "carbs"]]);
  const alerts = document.getElementById("alerts");
  let response = null;
  try { response = await GB.api(`/api/v1/patients/${encodeURIComponent(GB.patient)}/alerts?limit=10`); } catch (e) { /* offline */ }
  const items = response && response.ok ? (await response.json()).items : [];
  alerts.innerHTML = "";
  if (!response || !response.ok) {
    // Refused (no alerts scope) or failed: said as such, never as "no alerts".
    alerts.innerHTML = `<li class="unavailable">${GB.L.alerts_unavailable}${response ? ` (${response.status})` : ""}</li>`;
    GB.ready(); return;
  }
  for (const a of items) {
    const li = document.createElement("li");
    li.textContent = `${a.started_at.slice(0, 16).replace("T", " ")} · ${a.kind} · ${a.subject}`;
    alerts.appendChild(li);
  }
  if (!items.length) alerts.innerHTML = `<li>${GB.L.no_alerts}</li>`;
  GB.ready();
})();
