// The index page's script (a file of its own: the pages' Content-Security-Policy allows
// no inline script).
"use strict";
// Sign-in: the OAuth2 password flow; the access token lives in this tab's sessionStorage.
GB.translate();
document.getElementById("lang").value = GB.lang;
document.getElementById("unit").value = GB.unit;
document.getElementById("lang").addEventListener("change", (e) => {
  localStorage.setItem("gb-lang", e.target.value); location.reload();
});
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const lang = document.getElementById("lang").value, unit = document.getElementById("unit").value;
  localStorage.setItem("gb-lang", lang); localStorage.setItem("gb-unit", unit);
  const body = new URLSearchParams({
    username: document.getElementById("username").value,
    password: document.getElementById("password").value,
  });
  const response = await fetch("/api/v1/auth/token", { method: "POST", body });
  if (!response.ok) { document.getElementById("error").textContent = GB.L.sign_in_failed; return; }
  sessionStorage.setItem("gb-token", (await response.json()).access_token);
  const next = new URLSearchParams(location.search).get("next");
  if (next && next.startsWith("/dashboards/")) { location.assign(next); return; }
  const me = await (await GB.api("/api/v1/users/me")).json();
  const p = new URLSearchParams({ lang, unit });
  if (me.patient_id) { p.set("patient", me.patient_id); location.assign("/dashboards/patient.html?" + p); }
  else { location.assign("/dashboards/clinician.html?" + p); }
});
document.body.dataset.state = "ready";
