// The clinician page's script (a file of its own: the pages' Content-Security-Policy allows
// no inline script). The worklist comes ranked and formatted from the API; this only lays
// it out: one row per patient, the reasons first, a cell marked where a goal is missed.
"use strict";
(async () => {
  GB.translate(); GB.nav();
  const L = GB.L;
  const params = new URLSearchParams(location.search);
  const flagged = document.getElementById("flagged");
  const clinic = document.getElementById("clinic");
  flagged.checked = params.get("flagged") === "true";
  const go = (changes) => {
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) { if (v) p.set(k, v); else p.delete(k); }
    location.assign(`${location.pathname}?${p}`);
  };
  flagged.addEventListener("change", () => go({ flagged: flagged.checked ? "true" : "", page: "" }));
  clinic.addEventListener("change", () => go({ clinic: clinic.value, page: "" }));
  const q = new URLSearchParams(GB.query());
  for (const k of ["flagged", "clinic", "page"]) if (params.get(k)) q.set(k, params.get(k));
  const data = await GB.fetchJson(`/api/v1/dashboards/worklist?${q}`);
  if (!data) return;
  for (const c of data.clinics) {
    const o = document.createElement("option");
    o.value = c.id; o.textContent = c.name; o.selected = c.id === params.get("clinic");
    clinic.appendChild(o);
  }
  if (!data.clinics.length) clinic.parentElement.hidden = true;
  // [key of the item, header label, goal metric whose miss marks the cell]
  const columns = [
    ["reasons", "attention"], ["source_label", "source"], ["tir", "tir", "time_in_range"],
    ["tar_high", "tar_high", "time_above_range"], ["tar_very_high", "tar_very_high", "time_very_high"],
    ["tbr", "tbr_short", "time_below_range"], ["gmi", "gmi"], ["cv", "cv", "cv"],
    ["days_since_sync", "days_since_sync"], ["last_sync", "last_sync"],
  ];
  const table = document.getElementById("worklist");
  const head = document.createElement("thead");
  const hr = document.createElement("tr");
  for (const label of ["patient", ...columns.map((c) => c[1]), "pages_links"]) {
    const th = document.createElement("th"); th.scope = "col"; th.textContent = L[label]; hr.appendChild(th);
  }
  head.appendChild(hr); table.appendChild(head);
  const body = document.createElement("tbody");
  for (const item of data.items) {
    const tr = document.createElement("tr");
    tr.dataset.patient = item.patient_id;
    tr.dataset.tier = item.tier;
    const cell = (text, label) => {
      const td = document.createElement("td"); td.textContent = text;
      td.dataset.label = L[label] || ""; tr.appendChild(td); return td;
    };
    const name = cell(item.name, "patient"); name.className = "name";
    for (const [key, label, goal] of columns) {
      if (key === "reasons") {
        const td = cell("", label); td.className = "reasons";
        for (const r of item.reasons) {
          const span = document.createElement("span");
          span.className = item.flagged ? "flag" : "flag none"; span.textContent = r;
          td.appendChild(span);
        }
        continue;
      }
      const td = cell(item[key], label);
      if (goal && item.missed.includes(goal)) td.classList.add("missed");
    }
    const links = cell("", "pages_links");
    for (const [page, key] of [["report.html", "report_page"], ["patient.html", "patient_glucose"], ["nutrition.html", "nutrition_page"]]) {
      const a = document.createElement("a");
      a.href = GB.link(page, { patient: item.patient_id }); a.textContent = L[key];
      a.className = page.replace(".html", "-link");
      links.appendChild(a); links.appendChild(document.createTextNode(" "));
    }
    body.appendChild(tr);
  }
  table.appendChild(body);
  const pager = document.getElementById("pager");
  pager.textContent = L.page_of.replace("{page}", data.page).replace("{pages}", data.pages).replace("{total}", data.total) + " ";
  if (data.not_ranked) pager.textContent += L.not_ranked.replace("{n}", data.not_ranked) + " ";
  for (const [label, page] of [["previous_page", data.page - 1], ["next_page", data.page + 1]]) {
    if (page < 1 || page > data.pages) continue;
    const a = document.createElement("a");
    const p = new URLSearchParams(location.search); p.set("page", page);
    a.href = `${location.pathname}?${p}`; a.textContent = L[label]; a.className = label;
    pager.appendChild(a); pager.appendChild(document.createTextNode(" "));
  }
  GB.ready();
})();
