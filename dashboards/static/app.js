// glucobridge dashboards: the shared script of every page. Pages hold no patient data; they
// fetch it with the access token the sign-in page keeps in sessionStorage.
"use strict";
const GB = (() => {
  const params = new URLSearchParams(location.search);
  const lang = params.get("lang") || localStorage.getItem("gb-lang") || "en";
  const unit = params.get("unit") || localStorage.getItem("gb-unit") || "mg/dL";
  const L = window.GB_LABELS[lang] || window.GB_LABELS.en;
  const patient = params.get("patient");
  const token = () => sessionStorage.getItem("gb-token");

  function translate() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-label]").forEach((el) => {
      el.textContent = L[el.dataset.label];
    });
  }

  function signIn() {
    const next = encodeURIComponent(location.pathname + location.search);
    location.replace(`/dashboards/?next=${next}`);
  }

  // The page is leaving for sign-in: a promise that never settles stops the caller without
  // an error that would race the navigation and show up on the console.
  const leaving = () => new Promise(() => {});

  async function api(path) {
    if (!token()) { signIn(); return leaving(); }
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
    if (response.status === 401) { signIn(); return leaving(); }
    return response;
  }

  const query = () => `lang=${encodeURIComponent(lang)}&unit=${encodeURIComponent(unit)}`;

  function link(page, extra) {
    const p = new URLSearchParams({ lang, unit, ...extra });
    return `/dashboards/${page}?${p}`;
  }

  function nav() {
    const el = document.getElementById("nav");
    if (!el) return;
    const items = [["clinician.html", "all_patients", {}]];
    if (patient) {
      items.unshift(
        ["patient.html", "patient_page", { patient }],
        ["nutrition.html", "nutrition_page", { patient }],
        ["report.html", "report_page", { patient }],
      );
    }
    el.innerHTML = "";
    for (const [page, key, extra] of items) {
      const a = document.createElement("a");
      a.href = link(page, extra);
      a.textContent = L[key];
      el.appendChild(a);
    }
    for (const [l, u] of [["en", unit], ["zh-CN", unit], [lang, "mg/dL"], [lang, "mmol/L"]]) {
      const a = document.createElement("a");
      const p = new URLSearchParams(location.search);
      p.set("lang", l); p.set("unit", u);
      a.href = `${location.pathname}?${p}`;
      a.className = "switch";
      a.textContent = l !== lang ? (l === "en" ? "English" : "中文") : u;
      if (l === lang && u === unit) continue;
      el.appendChild(a);
    }
    const out = document.createElement("a");
    out.href = "/dashboards/"; out.textContent = L.sign_out;
    out.addEventListener("click", () => sessionStorage.removeItem("gb-token"));
    el.appendChild(out);
  }

  function table(id, rows, columns) {
    const el = document.getElementById(id);
    if (!el) return;
    const head = columns.map((c) => `<th>${L[c[1]] || c[1]}</th>`).join("");
    el.innerHTML = `<thead><tr>${head}</tr></thead>`;
    const body = document.createElement("tbody");
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const [key] of columns) {
        const td = document.createElement("td");
        td.textContent = row[key];
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    el.appendChild(body);
  }

  function plot(id, figure) {
    const el = document.getElementById(id);
    if (!figure) { el.textContent = L.no_data; return Promise.resolve(); }
    return Plotly.newPlot(el, figure.data, figure.layout, {
      displayModeBar: false, responsive: false,
    });
  }

  function header(data) {
    document.getElementById("who").textContent =
      `${data.name} · ${L.period} ${data.period} · ${data.unit}`;
  }

  function denied() {
    document.getElementById("main").innerHTML = `<p class="denied">${L.no_access}</p>`;
    document.body.dataset.state = "denied";
  }

  // Load a patient page's data; null (and the page says so) when there is none to show.
  async function load(kind) {
    translate(); nav();
    const response = await api(`/api/v1/patients/${encodeURIComponent(patient)}/dashboards/${kind}?${query()}`);
    if (!response.ok) { denied(); return null; }
    const data = await response.json();
    header(data);
    return data;
  }

  function ready() { document.body.dataset.state = "ready"; }

  return { L, lang, unit, patient, token, api, translate, nav, table, plot, load, link, ready, query };
})();
