// glucobridge dashboards: the shared script of every page. Pages hold no patient data; they
// fetch it with the access token the sign-in page keeps in sessionStorage, and refresh it
// through the refresh token (rotated at each use) when it expires, without leaving the page.
"use strict";
const GB = (() => {
  const params = new URLSearchParams(location.search);
  const chinese = /^zh\b/i.test(navigator.language || "");
  const lang = params.get("lang") || localStorage.getItem("gb-lang") || (chinese ? "zh-CN" : "en");
  // A Chinese browser's first visit shows mmol/L, the unit clinics in China use.
  const unit = params.get("unit") || localStorage.getItem("gb-unit") || (lang === "zh-CN" ? "mmol/L" : "mg/dL");
  const L = window.GB_LABELS[lang] || window.GB_LABELS.en;
  const patient = params.get("patient");
  const token = () => sessionStorage.getItem("gb-token");

  function translate() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-label]").forEach((el) => {
      el.textContent = L[el.dataset.label];
    });
  }

  // Off to sign-in, with the reason the sign-in page shows (a session that ended).
  function signIn(reason) {
    const p = new URLSearchParams({ next: location.pathname + location.search, lang });
    if (reason) p.set("reason", reason);
    sessionStorage.removeItem("gb-token"); sessionStorage.removeItem("gb-refresh");
    location.replace(`/dashboards/?${p}`);
  }

  // The page is leaving for sign-in: a promise that never settles stops the caller without
  // an error that would race the navigation and show up on the console.
  const leaving = () => new Promise(() => {});

  // One refresh at a time, shared by every request that found the access token expired.
  let refreshing = null;
  function refresh() {
    const stored = sessionStorage.getItem("gb-refresh");
    if (!stored) return Promise.resolve(false);
    refreshing = refreshing || (async () => {
      try {
        const body = new URLSearchParams({ grant_type: "refresh_token", refresh_token: stored });
        const r = await fetch("/api/v1/auth/token", { method: "POST", body });
        if (!r.ok) return false;
        const t = await r.json();
        sessionStorage.setItem("gb-token", t.access_token);
        sessionStorage.setItem("gb-refresh", t.refresh_token);
        return true;
      } catch (e) {
        return false;
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  // fetch with the access token; an expired token is refreshed once and the request sent
  // again; no session at all (or a refresh refused) goes to sign-in with a message.
  async function api(path, init) {
    if (!token()) { signIn(); return leaving(); }
    const send = () => fetch(path, { ...init, headers: { ...(init && init.headers), Authorization: `Bearer ${token()}` } });
    let response = await send();
    if (response.status === 401) {
      if (!(await refresh())) { signIn("expired"); return leaving(); }
      response = await send();
      if (response.status === 401) { signIn("expired"); return leaving(); }
    }
    return response;
  }

  const query = () => `lang=${encodeURIComponent(lang)}&unit=${encodeURIComponent(unit)}`;

  function link(page, extra) {
    const p = new URLSearchParams({ lang, unit, ...extra });
    return `/dashboards/${page}?${p}`;
  }

  let me = null;
  async function whoAmI() {
    if (me) return me;
    const cached = sessionStorage.getItem("gb-me");
    if (cached) { me = JSON.parse(cached); return me; }
    try {
      const r = await api("/api/v1/users/me");
      if (r.ok) { me = await r.json(); sessionStorage.setItem("gb-me", JSON.stringify(me)); }
    } catch (e) { /* offline: the page says so where it matters */ }
    return me;
  }

  async function nav() {
    const el = document.getElementById("nav");
    if (!el) return;
    const user = await whoAmI();
    const ownPage = user && patient && user.patient_id === patient;
    const items = [];
    if (patient) {
      items.push(
        ["patient.html", ownPage ? "patient_page" : "patient_glucose", { patient }],
        ["nutrition.html", "nutrition_page", { patient }],
        ["report.html", "report_page", { patient }],
      );
    }
    if (user && !user.patient_id) items.push(["clinician.html", "all_patients", {}]);
    el.innerHTML = "";
    for (const [page, key, extra] of items) {
      const a = document.createElement("a");
      a.href = link(page, extra);
      a.textContent = L[key];
      el.appendChild(a);
    }
    for (const [l, u] of [["en", unit], ["zh-CN", unit], [lang, "mg/dL"], [lang, "mmol/L"]]) {
      if (l === lang && u === unit) continue;
      const a = document.createElement("a");
      const p = new URLSearchParams(location.search);
      p.set("lang", l); p.set("unit", u);
      a.href = `${location.pathname}?${p}`;
      a.className = "switch";
      a.textContent = l !== lang ? (l === "en" ? "English" : "中文") : u;
      a.addEventListener("click", () => { localStorage.setItem("gb-lang", l); localStorage.setItem("gb-unit", u); save({ language: l, unit: u }); });
      el.appendChild(a);
    }
    const out = document.createElement("a");
    out.href = `/dashboards/?lang=${encodeURIComponent(lang)}`; out.textContent = L.sign_out; out.id = "sign-out";
    out.addEventListener("click", () => { sessionStorage.clear(); });
    el.appendChild(out);
    signedIn(user);
  }

  // Language and unit are the user's, kept on the server (every page and export uses them).
  function save(prefs) {
    if (!token()) return;
    fetch("/api/v1/users/me", {
      method: "PATCH", keepalive: true,
      headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json" },
      body: JSON.stringify(prefs),
    }).catch(() => {});
    sessionStorage.removeItem("gb-me");
  }

  // The header: who is signed in, and (on a patient's page) whose data this is.
  function signedIn(user, data) {
    const who = document.getElementById("who");
    if (!who) return;
    const parts = [];
    if (user) parts.push(`${L.signed_in_as} ${user.display_name} (${L["role_" + user.role] || user.role})`);
    if (data) parts.push(`${L.patient}: ${data.name}`, `${L.period} ${data.period}`, data.unit);
    who.textContent = parts.join(" · ");
  }

  function table(id, rows, columns) {
    const el = document.getElementById(id);
    if (!el) return;
    const head = columns.map((c) => `<th scope="col">${L[c[1]] || c[1]}</th>`).join("");
    el.innerHTML = `<thead><tr>${head}</tr></thead>`;
    const body = document.createElement("tbody");
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const [key, label] of columns) {
        const td = document.createElement("td");
        td.textContent = row[key];
        td.dataset.label = L[label] || label;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    el.appendChild(body);
  }

  const PLOT_CONFIG = { displayModeBar: false, responsive: true, locale: lang === "zh-CN" ? "zh-CN" : "en" };
  function plot(id, figure) {
    const el = document.getElementById(id);
    if (!figure) { el.textContent = L.no_data; el.classList.add("empty"); return Promise.resolve(); }
    return Plotly.newPlot(el, figure.data, figure.layout, PLOT_CONFIG);
  }

  // A state the whole page is in, said in words: denied, error, unavailable, offline, empty.
  function state(name, message) {
    const main = document.getElementById("main");
    main.innerHTML = "";
    const p = document.createElement("p");
    p.className = `state ${name}`; p.id = "state"; p.textContent = message;
    main.appendChild(p);
    document.body.dataset.state = name;
    const who = document.getElementById("who");
    if (who && who.dataset.label === "loading") { who.removeAttribute("data-label"); who.textContent = ""; }
    whoAmI().then((u) => signedIn(u));
  }

  // Data of a page as JSON, or null once the page says why there is none: no access (404),
  // a server error (500), the service unavailable (503), no connection.
  async function fetchJson(path) {
    let response;
    try {
      response = await api(path);
    } catch (e) {
      state("offline", L.offline); return null;
    }
    if (response.ok) return response.json();
    if (response.status === 404 || response.status === 403) state("denied", L.no_access);
    else if (response.status === 503) state("unavailable", L.unavailable);
    else state("error", `${L.server_error} (${response.status})`);
    return null;
  }

  // Load a patient page's data; null (and the page says so) when there is none to show.
  async function load(kind) {
    translate(); const navigated = nav();
    const data = await fetchJson(`/api/v1/patients/${encodeURIComponent(patient)}/dashboards/${kind}?${query()}`);
    await navigated;
    if (!data) return null;
    signedIn(me, data);
    // A clinician's view of a patient's page is the patient's glucose, not "my glucose".
    const h1 = document.querySelector("h1[data-label=patient_page]");
    if (h1 && !(me && me.patient_id === patient)) h1.textContent = L.patient_glucose;
    document.title = `${data.name} · ${L[kind + "_page"] || ""} · glucobridge`;
    if (data.readings === 0) {
      const note = document.createElement("p");
      note.className = "state empty"; note.id = "state"; note.textContent = L.no_data;
      document.getElementById("main").prepend(note);
      document.body.dataset.empty = "true";
    }
    return data;
  }

  // The five-band bar as the AGP Report stacks it, each band's share, range and goal beside
  // it (HTML, not a plotly legend: nothing is clipped at any width or in print).
  function tir(id, rows) {
  const el = document.getElementById(id);
  el.innerHTML = "";
  const bar = document.createElement("div"); bar.className = "tir-bar";
  const legend = document.createElement("ul"); legend.className = "tir-legend";
  for (const r of rows) {
    const seg = document.createElement("div");
    seg.className = "seg"; seg.dataset.band = r.band;
    seg.style.flexGrow = String(r.pct); seg.style.background = r.colour;
    bar.appendChild(seg);
    const li = document.createElement("li"); li.dataset.band = r.band;
    const swatch = document.createElement("span"); swatch.className = "swatch"; swatch.style.background = r.colour;
    const text = document.createElement("span");
    text.innerHTML = "";
    const name = document.createElement("b"); name.textContent = `${r.label} ${r.value}`;
    const small = document.createElement("small"); small.textContent = ` ${r.range}${r.goal ? " · " + r.goal : ""}`;
    text.append(name, small);
    li.append(swatch, text);
    legend.appendChild(li);
  }
  el.append(bar, legend);
}


  function ready() { document.body.dataset.state = "ready"; }

  return { tir, L, lang, unit, patient, token, api, fetchJson, translate, nav, table, plot, load, link, ready, query, state, whoAmI };
})();
