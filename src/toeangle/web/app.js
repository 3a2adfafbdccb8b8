// toeangle web page: plain JS, no build step. Talks to the same /v1 API as the phone app.
"use strict";

const $ = (id) => document.getElementById(id);
let photo = null;

function headers() {
  const key = $("key").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text || "";
  el.className = kind || "";
}

async function loadProtocols() {
  try {
    const response = await fetch("/v1/protocols", { headers: headers() });
    if (!response.ok) return;
    const protocols = await response.json();
    const select = $("protocol");
    select.innerHTML = "";
    for (const p of protocols) {
      const option = document.createElement("option");
      option.value = p.name;
      option.textContent = `${p.title} (normal from ${p.normal_min_deg} deg)`;
      option.dataset.how = p.how;
      select.append(option);
    }
    showHow();
  } catch (err) {
    // the default option stays; measuring still works
  }
}

function showHow() {
  const option = $("protocol").selectedOptions[0];
  $("protocol-how").textContent = option && option.dataset.how ? option.dataset.how : "";
}

function choose(file) {
  if (!file) return;
  photo = file;
  $("go").disabled = false;
  $("drop-text").textContent = `Photo: ${file.name || "from camera"} (${(file.size / 1024).toFixed(file.size < 10240 ? 1 : 0)} kB)`;
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  setStatus("");
}

function text(id, value) {
  $(id).textContent = value || "";
}

function showResult(body) {
  $("result").hidden = false;
  $("overlay").src = "data:image/png;base64," + body.overlay_png_base64;
  const reasons = $("reasons");
  reasons.innerHTML = "";
  if (body.status !== "ok") {
    text("angle", "-");
    const verdict = $("verdict");
    verdict.textContent = "Cannot measure this photo";
    verdict.className = "verdict unmeasurable";
    text("grade", "");
    text("summary", "");
    text("notes", "");
    for (const reason of body.reasons) {
      const li = document.createElement("li");
      li.textContent = reason;
      reasons.append(li);
    }
    $("routine").hidden = true;
    setStatus("The photo could not be measured: see why below.", "warn");
    return;
  }
  const m = body.measurement, v = body.verdict, r = body.routine;
  text("angle", m.angle_deg.toFixed(1) + (m.uncertainty_deg != null ? ` \u00b1${m.uncertainty_deg.toFixed(1)}` : ""));
  const verdict = $("verdict");
  verdict.textContent = v.label;
  verdict.className = "verdict " + v.label;
  text("grade", v.grade ? `${v.grade.system} grade ${v.grade.grade}: ${v.grade.description}` : "");
  text("summary", v.summary);
  text("notes", m.notes.join(" "));
  $("routine").hidden = false;
  text("advice", r.advice);
  const list = $("exercises");
  list.innerHTML = "";
  for (const e of r.exercises) {
    const li = document.createElement("li");
    const name = document.createElement("strong");
    name.textContent = e.name;
    const dose = document.createElement("span");
    dose.className = "dose";
    dose.textContent = " " + e.dose;
    const how = document.createElement("p");
    how.textContent = e.how;
    li.append(name, dose, how);
    list.append(li);
  }
  $("clinician").hidden = !r.see_clinician;
  text("disclaimer", r.disclaimer);
  setStatus("");
}

async function measure(event) {
  event.preventDefault();
  if (!photo) {
    setStatus("Choose or drop a photo first.", "error");
    return;
  }
  const form = new FormData();
  form.append("photo", photo, "photo");  // the file's own name is not sent
  form.append("protocol", $("protocol").value);
  if ($("side").value) form.append("side", $("side").value);
  if ($("other").value.trim()) form.append("other_foot_angle", $("other").value.trim());
  if ($("pain").checked) form.append("pain", "true");
  $("go").disabled = true;
  setStatus("Measuring\u2026", "busy");
  try {
    const response = await fetch("/v1/measurements?include_overlay=true", {
      method: "POST", body: form, headers: { ...headers(), Accept: "application/json" },
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      $("result").hidden = true;
      const retry = response.headers.get("Retry-After");
      const why = body && body.title ? `${body.title}: ${body.detail}` : `HTTP ${response.status}`;
      setStatus(why + (retry ? ` (try again in ${retry} s)` : ""), "error");
      return;
    }
    showResult(body);
  } catch (err) {
    setStatus("Could not reach the service: " + err.message, "error");
  } finally {
    $("go").disabled = !photo;
  }
}

function setUpDrop() {
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => {
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) choose(file);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("file").addEventListener("change", (e) => choose(e.target.files[0]));
  $("camera").addEventListener("change", (e) => choose(e.target.files[0]));
  $("protocol").addEventListener("change", showHow);
  $("key").addEventListener("change", loadProtocols);
  $("form").addEventListener("submit", measure);
  setUpDrop();
  loadProtocols();
});
