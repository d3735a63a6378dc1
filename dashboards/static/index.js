// The index page's script (a file of its own: the pages' Content-Security-Policy allows
// no inline script). Sign-in: the OAuth2 password flow; the access and refresh tokens live
// in this tab's sessionStorage.
"use strict";
const params = new URLSearchParams(location.search);
// Chosen here (a link's lang, an earlier choice on this browser, or a select changed): saved
// as the user's; otherwise the user's saved choice, if any, wins over the browser's language.
let chosen = params.has("lang") || localStorage.getItem("gb-lang") !== null;
GB.translate();
document.getElementById("lang").value = GB.lang;
document.getElementById("unit").value = GB.unit;
if (params.get("reason") === "expired") document.getElementById("error").textContent = GB.L.session_expired;
document.getElementById("unit").addEventListener("change", () => { chosen = true; });
document.getElementById("lang").addEventListener("change", (e) => {
  localStorage.setItem("gb-lang", e.target.value);
  const p = new URLSearchParams(location.search); p.set("lang", e.target.value);
  location.replace(`${location.pathname}?${p}`);
});
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  let lang = document.getElementById("lang").value, unit = document.getElementById("unit").value;
  const body = new URLSearchParams({
    username: document.getElementById("username").value,
    password: document.getElementById("password").value,
  });
  let response;
  try {
    response = await fetch("/api/v1/auth/token", { method: "POST", body });
  } catch (e) { document.getElementById("error").textContent = GB.L.offline; return; }
  if (response.status >= 500) { document.getElementById("error").textContent = GB.L.unavailable; return; }
  if (!response.ok) { document.getElementById("error").textContent = GB.L.sign_in_failed; return; }
  const tokens = await response.json();
  sessionStorage.clear();
  sessionStorage.setItem("gb-token", tokens.access_token);
  sessionStorage.setItem("gb-refresh", tokens.refresh_token);
  // The choice made here is the user's, kept on the server for every page and export.
  const me = await (await GB.api("/api/v1/users/me")).json();
  if (!chosen && me.language && me.unit) {
    lang = me.language; unit = me.unit;
  } else {
    await GB.api("/api/v1/users/me", {
      method: "PATCH", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ language: lang, unit }),
    });
  }
  localStorage.setItem("gb-lang", lang); localStorage.setItem("gb-unit", unit);
  const next = params.get("next");
  if (next && next.startsWith("/dashboards/")) {
    const target = new URL(next, location.origin);
    target.searchParams.set("lang", lang); target.searchParams.set("unit", unit);
    location.assign(target.pathname + target.search); return;
  }
  const p = new URLSearchParams({ lang, unit });
  if (me.patient_id) { p.set("patient", me.patient_id); location.assign("/dashboards/patient.html?" + p); }
  else { location.assign("/dashboards/clinician.html?" + p); }
});
document.body.dataset.state = "ready";
