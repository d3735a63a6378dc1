// The clinician page's script (a file of its own: the pages' Content-Security-Policy allows
// no inline script).
"use strict";
(async () => {
  GB.translate(); GB.nav();
  const response = await GB.api(`/api/v1/dashboards/worklist?${GB.query()}`);
  const table = document.getElementById("worklist");
  const L = GB.L;
  table.innerHTML = `<thead><tr><th>${L.patient}</th><th>${L.attention}</th><th>${L.tbr}</th>
    <th>${L.level2}</th><th>${L.gmi}</th><th>Δ</th><th>${L.last_reading}</th><th></th></tr></thead>`;
  const body = document.createElement("tbody");
  for (const item of response.ok ? (await response.json()).items : []) {
    const tr = document.createElement("tr");
    tr.dataset.patient = item.patient_id;
    const cell = (text) => { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; };
    cell(item.name);
    const flags = cell("");
    for (const f of item.flags) {
      const span = document.createElement("span");
      span.className = item.flag_keys.length ? "flag" : "flag none";
      span.textContent = f; flags.appendChild(span);
    }
    cell(item.tbr); cell(item.level2); cell(item.gmi); cell(item.gmi_change); cell(item.last_reading);
    const links = cell("");
    for (const [page, key] of [["report.html", "report_page"], ["patient.html", "patient_page"], ["nutrition.html", "nutrition_page"]]) {
      const a = document.createElement("a");
      a.href = GB.link(page, { patient: item.patient_id }); a.textContent = L[key];
      a.className = page.replace(".html", "-link");
      links.appendChild(a); links.appendChild(document.createTextNode(" "));
    }
    body.appendChild(tr);
  }
  table.appendChild(body);
  GB.ready();
})();
