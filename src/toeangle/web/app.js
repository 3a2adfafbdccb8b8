// toeangle web page: plain JS, no build step. Talks to the same /v1 API as the phone app:
// the photo once (/v1/measurements), then every change of the points through from-landmarks.
"use strict";

const $ = (id) => document.getElementById(id);

// The four points of the angle, heel to toe, and how to find each (../shared/find/ANNOTATING.md).
const STEPS = [
  ["heel", "Heel", "the back of the heel, where it is furthest back, a little above the floor."],
  ["first_metatarsal", "Metatarsal", "halfway along the foot, two-thirds of the way up from the sole to the top of the big-toe side."],
  ["first_mtp", "Big-toe joint", "the middle of the bulge of the big-toe joint (the ball of the foot)."],
  ["hallux_ip", "Toe joint", "the middle of the big toe's own joint, halfway through the toe's thickness."],
];
const TITLES = Object.fromEntries(STEPS.map(([name, title]) => [name, title]));
TITLES.hallux_tip = "Toe tip";
const HISTORY_KEY = "toeangle.history.v1";
const RESCORE_MS = 250;

const state = {
  file: null,
  picture: null,        // an <img> of the chosen photo, or null when the browser cannot show it (HEIC)
  size: null,           // {width, height}: the photo's upright pixels, as the API counts them
  answer: null,         // the photo's own answer
  model: null,          // the model's points, for "back to the model's points"
  points: null,         // {name: {x, y, sigma_px}} as shown now
  viewCorrection: null, // sent back with every change: dragged points keep the photo's perspective
  undo: [],
  selected: "hallux_ip",
  placing: null,        // {step, cursor: {x, y}} while the user places the points
  placed: false,        // the user placed all points (on a refused photo: the only scoreable ones)
  drag: null,           // {name, pointerId, before}
  lastNudge: null,      // {name, at}: arrow-key nudges in a quick run are one undo step
  timer: null,
  sequence: 0,          // answers to older requests are dropped
  historyId: null,      // the history entry this photo's measurement updates
};

// ---- small helpers ----------------------------------------------------------------

function headers(extra) {
  const key = $("key").value.trim();
  return { ...(key ? { Authorization: "Bearer " + key } : {}), ...extra };
}

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text || "";
  el.className = kind || "";
}

function text(id, value) {
  $(id).textContent = value || "";
}

function copyPoints(points) {
  return Object.fromEntries(Object.entries(points).map(([name, p]) => [name, { ...p }]));
}

function fmt(value, digits = 1) {
  return (value < 0 ? "\u2212" : "") + Math.abs(value).toFixed(digits);
}

async function problemText(response) {
  const body = await response.json().catch(() => null);
  const retry = response.headers.get("Retry-After");
  const why = body && body.title ? `${body.title}: ${body.detail}` : `HTTP ${response.status}`;
  return why + (retry ? ` (try again in ${retry} s)` : "");
}

// ---- the form -----------------------------------------------------------------------

async function loadProtocols() {
  try {
    const response = await fetch("/v1/protocols", { headers: headers() });
    if (!response.ok) return;
    const select = $("protocol");
    const chosen = select.value;
    select.innerHTML = "";
    for (const p of await response.json()) {
      const option = document.createElement("option");
      option.value = p.name;
      option.textContent = `${p.title} (normal from ${p.normal_min_deg}\u00b0)`;
      option.dataset.how = p.how;
      option.dataset.normal = p.normal_min_deg;
      select.append(option);
    }
    const auto = document.createElement("option");
    auto.value = "auto";
    auto.textContent = "Auto: read the test from the photo";
    auto.dataset.how = "The test is read from the landmarks: a foot placed as for standing or off the floor, heel "
      + "raised or not, the big toe bent back or resting. Who bends the toe does not show, so a raised toe off the "
      + "floor is judged by the passive test: choose the active test if you lifted it yourself.";
    select.append(auto);
    select.value = chosen;
    showHow();
  } catch (err) {
    // the default option stays; measuring still works
  }
}

function showHow() {
  const option = $("protocol").selectedOptions[0];
  text("protocol-how", option && option.dataset.how);
  $("tip-protocol").hidden = $("protocol").value !== "passive_nwb";
}

function options() {
  const body = { protocol: $("protocol").value, pain: $("pain").checked };
  if ($("side").value) body.side = $("side").value;
  const other = parseFloat($("other").value);
  if (Number.isFinite(other)) body.other_foot_angle_deg = other;
  return body;
}

const CLIP_PROTOCOLS = ["heel_raise", "walking", "running"];

function isClip(file) {
  return file.type.startsWith("video/") || /\.(mp4|m4v|mov|webm|mkv|avi)$/i.test(file.name);
}

function choose(file) {
  if (!file) return;
  state.file = file;
  clearResult();
  $("go").disabled = false;
  $("form").classList.add("has-photo");  // Measure now stays under the thumb
  const kb = file.size / 1024;
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.removeAttribute("src");
  if (isClip(file)) {  // a clip measures a movement: a heel raise (the default) or push-off while walking
    text("drop-text", `Clip chosen (${(kb / 1024).toFixed(1)} MB).`);
    preview.hidden = true;
    if (!CLIP_PROTOCOLS.includes($("protocol").value)) {
      $("protocol").value = "heel_raise";
      showHow();
    }
  } else {
    text("drop-text", `Photo chosen (${kb.toFixed(kb < 10 ? 1 : 0)} kB).`);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
  }
  setStatus("");
}

function clearResult() {
  clearTimeout(state.timer);
  state.timer = null;
  Object.assign(state, { answer: null, model: null, points: null, viewCorrection: null, undo: [], placing: null,
                         drag: null, picture: null, size: null, historyId: null, placed: false });
  state.sequence += 1;
  $("result").hidden = true;
  $("clip-result").hidden = true;
}

function setUpPickers() {
  const open = () => $("file").click();
  $("pick").addEventListener("click", open);
  $("shoot").addEventListener("click", () => $("camera").click());
  for (const id of ["file", "camera"]) {
    $(id).addEventListener("change", (e) => { choose(e.target.files[0]); e.target.value = ""; });
  }
  const drop = $("drop");
  drop.addEventListener("keydown", (e) => {
    if (e.target === drop && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      open();
    }
  });
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

// ---- measuring --------------------------------------------------------------------

function loadPicture(file) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);  // e.g. HEIC: the points are drawn without the photo
    img.src = $("preview").src || URL.createObjectURL(file);
  });
}

async function measure(event) {
  event.preventDefault();
  if (!state.file) {
    setStatus("Choose or drop a photo first.", "error");
    return;
  }
  const file = state.file;
  clearResult();
  state.file = file;
  if (isClip(file)) {
    await measureClip(file);
    return;
  }
  const form = uploadForm("photo", file);
  $("go").disabled = true;
  setStatus("Measuring\u2026", "busy");
  const sequence = state.sequence;
  try {
    const [response, picture] = await Promise.all([
      fetch("/v1/measurements", { method: "POST", body: form, headers: headers({ Accept: "application/json" }) }),
      loadPicture(file),
    ]);
    if (sequence !== state.sequence) return;  // a new photo was chosen meanwhile
    if (!response.ok) {
      setStatus(await problemText(response), "error");
      return;
    }
    const body = await response.json();
    state.answer = body;
    state.picture = picture;
    state.size = { width: body.image.width, height: body.image.height };
    state.model = pointsOf(body.landmarks);
    state.points = copyPoints(state.model);
    state.viewCorrection = body.measurement ? body.measurement.view_correction : null;
    $("result").hidden = false;
    showAnswer(body);
    if (body.status !== "ok") {
      setStatus("The photo could not be measured: see why below, or place the points yourself.", "warn");
      startPlacing();
    } else {
      setStatus(picture ? "" : "This browser cannot show the photo; the points are drawn without it.");
      record(body);
    }
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    $("result").scrollIntoView({ behavior: still ? "auto" : "smooth", block: "start" });
    $("headline").focus({ preventScroll: true });
  } catch (err) {
    setStatus("Could not reach the service: " + err.message, "error");
  } finally {
    $("go").disabled = !state.file;
  }
}

function uploadForm(field, file) {
  const form = new FormData();
  form.append(field, file, field);  // the file's own name is not sent
  for (const [name, value] of Object.entries(options())) form.append(name, String(value));
  return form;
}

async function measureClip(file) {
  const form = uploadForm("video", file);
  $("go").disabled = true;
  setStatus("Measuring the clip, frame by frame\u2026", "busy");
  const sequence = state.sequence;
  try {
    const response = await fetch("/v1/videos?include_pictures=true", {
      method: "POST", body: form, headers: headers({ Accept: "application/json" }),
    });
    if (sequence !== state.sequence) return;
    if (!response.ok) {
      setStatus(await problemText(response), "error");
      return;
    }
    showClip(await response.json());
    setStatus("");
    $("clip-result").scrollIntoView({ block: "start" });
    $("clip-headline").focus({ preventScroll: true });
  } catch (err) {
    setStatus("Could not reach the service: " + err.message, "error");
  } finally {
    $("go").disabled = !state.file;
  }
}

function showClip(body) {
  const mv = body.movement, v = body.verdict, frames = body.frames;
  const measured = frames.filter((f) => f.status === "ok").length;
  $("clip-result").hidden = false;
  const verdict = $("clip-verdict");
  if (body.status === "ok") {
    const read = mv.steps.length
      ? `push-off ${fmt(mv.angle_deg)}\u00b0` + (mv.spread_deg != null ? ` \u00b1 ${fmt(mv.spread_deg)}` : "")
        + ` over ${mv.steps.length} step${mv.steps.length > 1 ? "s" : ""}`
      : `peak ${fmt(mv.angle_deg)}\u00b0 at ${mv.key_time_s.toFixed(2)} s`;
    text("clip-headline", read[0].toUpperCase() + read.slice(1));
    verdict.textContent = v.label;
    verdict.className = "verdict " + v.label;
    text("clip-summary", v.summary);
    record({ measurement: { angle_deg: mv.angle_deg }, options: body.options, verdict: v });  // the clip's reading, by its test
  } else {
    text("clip-headline", "No angle");
    verdict.textContent = "This clip cannot be measured";
    verdict.className = "verdict unmeasurable";
    text("clip-summary", "");
  }
  const reasons = $("clip-reasons");
  reasons.innerHTML = "";
  for (const reason of body.status === "ok" ? [] : body.reasons) {
    const li = document.createElement("li");
    li.textContent = reason;
    reasons.append(li);
  }
  $("clip-plot").src = "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(body.plot_svg)));
  $("clip-plot").alt = "Plot of the toe's angle over the clip" + (mv ? `, read at ${fmt(mv.angle_deg)} degrees` : "");
  $("clip-key").src = "data:image/png;base64," + body.key_frame_png_base64;
  const key = mv ? mv.key_frame : 0;
  $("clip-key").alt = `Frame ${key} of the clip with the points and the angle drawn on it`;
  text("clip-key-caption", mv ? `Frame ${key} (${mv.key_time_s.toFixed(2)} s), where the angle was read.`
    : "The first frame.");
  text("clip-frames", `${measured} of ${frames.length} frames measured; ${body.frames_followed} followed from the `
    + `frame before.`);
  $("clip-routine").hidden = body.status !== "ok";
  if (body.status === "ok") {
    text("clip-advice", body.routine.advice);
    fillExercises($("clip-exercises"), body.routine.exercises);
    text("clip-disclaimer", body.routine.disclaimer);
  }
}

function pointsOf(landmarks) {
  const points = {};
  for (const [name, p] of Object.entries(landmarks || {})) {
    if (p) points[name] = { x: p.x, y: p.y, sigma_px: p.sigma_px };
  }
  return points;
}

function changed() {
  drawEditor();
  updateTools();
  // at most one call per RESCORE_MS while a finger moves, and always one with the last position
  if (scoreable() && !state.timer) {
    state.timer = setTimeout(() => { state.timer = null; rescore(); }, RESCORE_MS);
  }
}

async function rescore() {
  const landmarks = {};
  for (const [name, p] of Object.entries(state.points)) {
    landmarks[name] = { x: Math.round(p.x * 100) / 100, y: Math.round(p.y * 100) / 100 };
    if (p.sigma_px != null) landmarks[name].sigma_px = p.sigma_px;
  }
  // The service reads the posture (and auto's pick) from the dragged points themselves.
  const body = { landmarks, options: options(), image: state.size };
  const correction = state.viewCorrection;
  if (correction) {
    // The model's own points keep the photo's own correction (and so its angle); moved points get the
    // perspective alone, which the API takes from moved_points_deg.
    body.view_correction = atModel() ? { degrees: correction.degrees, sigma_deg: correction.sigma_deg } : correction;
  }
  const sequence = ++state.sequence;
  try {
    const response = await fetch("/v1/measurements/from-landmarks", {
      method: "POST", body: JSON.stringify(body), headers: headers({ "Content-Type": "application/json" }),
    });
    if (sequence !== state.sequence) return;
    if (!response.ok) {
      setStatus(await problemText(response), "error");
      return;
    }
    const answer = await response.json();
    if (sequence !== state.sequence) return;
    showAnswer(answer);
    setStatus("");
    record(answer);
  } catch (err) {
    setStatus("Could not reach the service: " + err.message, "error");
  }
}

// ---- showing an answer --------------------------------------------------------------

function showAnswer(body) {
  const reasons = $("reasons");
  if (body.status !== "ok") {
    text("angle", "No angle");
    $("live").hidden = true;
    text("plusminus", "");
    text("source", "");
    const verdict = $("verdict");
    verdict.textContent = "This photo cannot be measured";
    verdict.className = "verdict unmeasurable";
    text("grade", "");
    text("summary", "");
    reasons.innerHTML = "";
    for (const reason of body.reasons) {
      const li = document.createElement("li");
      li.textContent = reason;
      reasons.append(li);
    }
    $("explain").innerHTML = "";
    text("notes", "");
    $("details").hidden = true;
    $("routine").hidden = true;
    showTestCheck(body);
    drawEditor();
    updateTools();
    return;
  }
  if (state.answer.status === "ok") reasons.innerHTML = "";  // a refused photo's reasons stay beside its points
  const m = body.measurement, v = body.verdict, r = body.routine;
  text("angle", fmt(m.angle_deg) + "\u00b0");
  text("live", fmt(m.angle_deg) + "\u00b0");  // in sight while a finger drags on a phone
  $("live").hidden = false;
  text("plusminus", m.uncertainty_deg != null ? `\u00b1 ${m.uncertainty_deg.toFixed(1)}\u00b0` : "");
  const verdict = $("verdict");
  verdict.textContent = v.label;
  verdict.className = "verdict " + v.label;
  text("grade", v.grade ? `${v.grade.system} grade ${v.grade.grade}: ${v.grade.description}` : "");
  // the photo's posture advice opens the summary: the page shows it apart, beside the switch (showTestCheck)
  const advice = body.posture && body.posture.advice;
  text("summary", advice && v.summary.startsWith(advice) ? v.summary.slice(advice.length).trim() : v.summary);
  explain(body);
  $("details").hidden = false;
  showTestCheck(body);
  $("routine").hidden = !r;
  if (!r) {  // a test mismatch: no routine from another test's number
    drawEditor();
    updateTools();
    return;
  }
  text("advice", r.advice);
  fillExercises($("exercises"), r.exercises);
  $("clinician").hidden = !r.see_clinician;
  text("disclaimer", r.disclaimer);
  drawEditor();
  updateTools();
}

function fillExercises(list, exercises) {
  list.innerHTML = "";
  for (const e of exercises) {
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
}

// What the photo shows against the test, and a one-tap switch to the test it fits.
function showTestCheck(body) {
  const p = body.posture;
  const button = $("switch-test");
  // one tap only to a test the photo shows (a relaxed foot is placed for one, but must be taken again)
  const suggested = p ? p.switch_to : null;
  $("test-check").hidden = !p || (p.fit === "match" && body.options.protocol !== "auto");
  button.hidden = !suggested;
  if (!p) return;
  if (p.fit !== "match") text("test-seen", p.advice);
  else text("test-seen", `Test read from the photo: ${protocolTitle(p.protocol)} (${Math.round(100 * p.tests[p.protocol])}% sure).`);
  if (suggested) {
    const normal = normalFor(suggested);
    button.textContent = `Judge by the ${protocolTitle(suggested)} test` + (normal != null ? ` (normal from ${normal}\u00b0)` : "");
    button.dataset.protocol = suggested;
  }
}

function switchTest() {
  $("protocol").value = $("switch-test").dataset.protocol;
  showHow();
  if (scoreable()) changed();
  else if (state.file) $("form").requestSubmit();  // a refused photo: ask again with the suggested test
}

function explain(body) {
  const m = body.measurement;
  const rows = [["Angle between the lines", fmt(m.angle_2d_deg) + "\u00b0"]];
  if (m.view_correction) {
    rows.push(["View correction", `${m.view_correction.degrees >= 0 ? "+" : ""}${fmt(m.view_correction.degrees)}\u00b0 `
      + `(\u00b1 ${m.view_correction.sigma_deg.toFixed(1)}): how far the camera's perspective turned the toe`]);
  }
  rows.push(["Angle", fmt(m.angle_deg) + "\u00b0" + (m.view_correction ? " = lines + view correction" : "")]);
  rows.push(["\u00b1", m.uncertainty_deg != null ? `${m.uncertainty_deg.toFixed(1)}\u00b0 covers about 90% of errors`
    : "not known for these points"]);
  rows.push(["Points from", atModel() ? `the model (${state.answer.detector})` : "you"]);
  text("source", atModel() ? "From the points the model found: drag any that is off."
    : "From the points as you placed them.");
  rows.push(["Toe axis ends at", TITLES[m.phalanx_point].toLowerCase()]);
  const dl = $("explain");
  dl.innerHTML = "";
  for (const [term, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dl.append(dt, dd);
  }
  text("notes", m.notes.join(" "));
}

// ---- the editor: the photo and its points, drawn here --------------------------------

function drawEditor() {
  const canvas = $("editor");
  if (!state.size) return;
  // the whole photo in view: as wide as the card, but no taller than most of the window
  const aspect = state.size.height / state.size.width;
  const width = Math.min(canvas.closest("figure").clientWidth, window.innerHeight * 0.8 / aspect);
  const ratio = window.devicePixelRatio || 1;
  const height = width * aspect;
  canvas.style.width = width + "px";
  canvas.style.height = height + "px";
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  const scale = canvas.width / state.size.width;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (state.picture) ctx.drawImage(state.picture, 0, 0, canvas.width, canvas.height);
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  drawPoints(ctx, 1 / scale * ratio);
}

function drawPoints(ctx, px) {
  const p = state.points || {};
  const line = (a, b, beyond) => {
    if (!p[a] || !p[b]) return;
    const dx = p[b].x - p[a].x, dy = p[b].y - p[a].y;
    for (const [width, colour] of [[5, "rgba(0,0,0,0.6)"], [2.5, "#ffd23f"]]) {
      ctx.beginPath();
      ctx.moveTo(p[a].x, p[a].y);
      ctx.lineTo(p[b].x + dx * beyond, p[b].y + dy * beyond);
      ctx.lineWidth = width * px;
      ctx.strokeStyle = colour;
      ctx.stroke();
    }
  };
  if (!state.placing) {
    line("first_metatarsal", "first_mtp", 0.6);   // the fixed arm, drawn on past the joint
    line("first_mtp", p.hallux_ip ? "hallux_ip" : "hallux_tip", 0);
  }
  for (const [name, q] of Object.entries(p)) {
    if (state.placing && !STEPS.slice(0, state.placing.step).some(([n]) => n === name)) continue;
    const selected = name === state.selected && !state.placing;
    const radius = (selected ? 9 : 7) * px;
    ctx.beginPath();
    ctx.arc(q.x, q.y, radius, 0, 2 * Math.PI);
    ctx.fillStyle = name === "hallux_tip" ? "rgba(255,255,255,0.6)" : "#fff";
    ctx.fill();
    ctx.lineWidth = (selected ? 4 : 2.5) * px;
    ctx.strokeStyle = selected ? "#c2410c" : "#1f5b99";
    ctx.stroke();
  }
  if (state.placing) {
    const c = state.placing.cursor;
    ctx.lineWidth = 2 * px;
    for (const colour of ["#000", "#fff"]) {
      ctx.strokeStyle = colour;
      ctx.beginPath();
      ctx.moveTo(c.x - 14 * px, c.y); ctx.lineTo(c.x + 14 * px, c.y);
      ctx.moveTo(c.x, c.y - 14 * px); ctx.lineTo(c.x, c.y + 14 * px);
      ctx.stroke();
      ctx.lineWidth = 1 * px;
    }
  }
}

function photoXY(event) {
  const rect = $("editor").getBoundingClientRect();
  return {
    x: (event.clientX - rect.left) / rect.width * state.size.width,
    y: (event.clientY - rect.top) / rect.height * state.size.height,
  };
}

function nearest(at, cssRadius) {
  const rect = $("editor").getBoundingClientRect();
  const limit = cssRadius * state.size.width / rect.width;
  let best = null, bestDistance = limit;
  for (const [name, p] of Object.entries(state.points || {})) {
    const d = Math.hypot(p.x - at.x, p.y - at.y);
    if (d <= bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

function showLoupe(at, event) {
  const loupe = $("loupe");
  const canvas = $("editor");
  const rect = canvas.getBoundingClientRect();
  loupe.hidden = false;
  const size = loupe.width, zoom = 3;
  const cssX = at.x / state.size.width * rect.width, cssY = at.y / state.size.height * rect.height;
  // above the finger (under it for points near the top), so the finger never hides it
  const above = event && event.pointerType === "touch" ? 150 : 90;
  const top = cssY - above >= 0 ? cssY - above - size / 2 : cssY + above - size / 2;
  loupe.style.left = Math.min(Math.max(cssX - size / 2, 0), rect.width - size) + "px";
  loupe.style.top = top + "px";
  const ctx = loupe.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, size, size);
  const scale = zoom * rect.width / state.size.width;  // loupe pixels per photo pixel
  ctx.setTransform(scale, 0, 0, scale, size / 2 - at.x * scale, size / 2 - at.y * scale);
  if (state.picture) ctx.drawImage(state.picture, 0, 0, state.size.width, state.size.height);
  drawPoints(ctx, 1 / scale);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(size / 2, 0); ctx.lineTo(size / 2, size / 2 - 12);
  ctx.moveTo(size / 2, size / 2 + 12); ctx.lineTo(size / 2, size);
  ctx.moveTo(0, size / 2); ctx.lineTo(size / 2 - 12, size / 2);
  ctx.moveTo(size / 2 + 12, size / 2); ctx.lineTo(size, size / 2);
  ctx.stroke();
}

function clamp(p) {
  return { ...p, x: Math.min(Math.max(p.x, 0), state.size.width - 1), y: Math.min(Math.max(p.y, 0), state.size.height - 1) };
}

function setUpEditor() {
  const canvas = $("editor");
  canvas.addEventListener("pointerdown", (e) => {
    if (!state.size) return;
    const at = photoXY(e);
    if (state.placing) {
      state.placing.cursor = at;
      place();
      return;
    }
    const name = nearest(at, e.pointerType === "touch" ? 32 : 20);
    if (!name) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    state.drag = { name, pointerId: e.pointerId, before: copyPoints(state.points), offset: {
      x: state.points[name].x - at.x, y: state.points[name].y - at.y } };
    select(name);
    showLoupe(state.points[name], e);
  });
  canvas.addEventListener("pointermove", (e) => {
    const drag = state.drag;
    if (!drag || drag.pointerId !== e.pointerId) return;
    const at = photoXY(e);
    state.points[drag.name] = clamp({ ...state.points[drag.name], x: at.x + drag.offset.x, y: at.y + drag.offset.y });
    showLoupe(state.points[drag.name], e);
    changed();
  });
  const end = (e) => {
    const drag = state.drag;
    if (!drag || drag.pointerId !== e.pointerId) return;
    state.drag = null;
    $("loupe").hidden = true;
    const moved = drag.name && (drag.before[drag.name].x !== state.points[drag.name].x
                                || drag.before[drag.name].y !== state.points[drag.name].y);
    if (moved) {
      state.undo.push(drag.before);
      changed();
    }
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("keydown", nudge);
  window.addEventListener("resize", drawEditor);
}

function nudge(e) {
  const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  if (state.placing && e.key === "Enter") {
    e.preventDefault();
    place();
    return;
  }
  const step = steps[e.key];
  if (!step || !state.points) return;
  e.preventDefault();
  const size = (e.shiftKey ? 10 : 1) * Math.max(1, state.size.width / 800);
  if (state.placing) {
    state.placing.cursor = clamp({ x: state.placing.cursor.x + step[0] * size, y: state.placing.cursor.y + step[1] * size });
    drawEditor();
    return;
  }
  const point = state.points[state.selected];
  if (!point) return;
  // one undo step per run of nudges to the same point (a held key, or presses under a second apart)
  const last = state.lastNudge;
  if (!last || last.name !== state.selected || e.timeStamp - last.at > 1000) state.undo.push(copyPoints(state.points));
  state.lastNudge = { name: state.selected, at: e.timeStamp };
  state.points[state.selected] = clamp({ ...point, x: point.x + step[0] * size, y: point.y + step[1] * size });
  changed();
}

function select(name) {
  state.selected = name;
  for (const button of $("point-buttons").children) {
    button.setAttribute("aria-pressed", String(button.dataset.name === name));
  }
  drawEditor();
}

function updateTools() {
  const container = $("point-buttons");
  const names = state.placing ? [] : Object.keys(state.points || {});
  if (container.dataset.names !== names.join()) {
    container.dataset.names = names.join();
    container.innerHTML = "";
    for (const name of names) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.name = name;
      button.textContent = TITLES[name];
      button.addEventListener("click", () => { select(name); $("editor").focus(); });
      container.append(button);
    }
  }
  select(state.points && state.points[state.selected] ? state.selected : "hallux_ip");
  $("undo").disabled = !state.undo.length && !(state.placing && state.placing.step > 0);
  $("reset").disabled = !state.model || state.answer.status !== "ok" || atModel() || !!state.placing;
  $("place").disabled = !!state.placing;
}

function undo() {
  if (state.placing && state.placing.step > 0) {  // take back the last point placed
    state.placing.step -= 1;
    delete state.points[STEPS[state.placing.step][0]];
    showStep();
    drawEditor();
    updateTools();
    return;
  }
  if (!state.undo.length) return;
  const entry = state.undo.pop();
  if (entry.placingLast) {  // back into placing, before its last point
    Object.assign(state, { points: entry.points, placed: false, placing: { step: STEPS.length - 1, cursor: entry.cursor } });
    if (state.answer.status !== "ok") showAnswer(state.answer);
    $("live").hidden = true;
    $("placing").hidden = false;
    showStep();
    drawEditor();
    updateTools();
    return;
  }
  state.points = entry;
  if (state.placing) {
    state.placing = null;
    $("placing").hidden = true;
    setStatus("");
  }
  changed();
}

function atModel() {
  return !!state.model && state.answer.status === "ok" && JSON.stringify(state.model) === JSON.stringify(state.points);
}

function scoreable() {
  return !!state.answer && !state.placing && (state.answer.status === "ok" || state.placed);
}

// ---- placing the points by hand ------------------------------------------------------

function startPlacing() {
  if (scoreable()) state.undo.push(copyPoints(state.points));
  state.points = {};
  state.placing = { step: 0, cursor: { x: state.size.width / 2, y: state.size.height / 2 } };
  $("live").hidden = true;
  $("placing").hidden = false;
  showStep();
  drawEditor();
  updateTools();
}

function showStep() {
  const step = state.placing.step;
  const [name, title, where] = STEPS[step];
  text("place-step", `${step + 1} of ${STEPS.length}: ${title}.`);
  text("place-where", "Put it on " + where);
  for (const spot of document.querySelectorAll(".spot")) {
    const index = STEPS.findIndex(([n]) => n === spot.dataset.name);
    spot.classList.toggle("now", index === step);
    spot.classList.toggle("done", index < step);
  }
  setStatus(`Place point ${step + 1} of ${STEPS.length}: ${title.toLowerCase()}.`);
  state.selected = name;
}

function place() {
  const placing = state.placing;
  const [name] = STEPS[placing.step];
  state.points[name] = { ...clamp(placing.cursor), sigma_px: null };
  placing.step += 1;
  if (placing.step < STEPS.length) {
    showStep();
    drawEditor();
    return;
  }
  const before = copyPoints(state.points);
  delete before[name];
  state.undo.push({ placingLast: true, points: before, cursor: { ...placing.cursor } });  // undo: place it again
  state.placing = null;
  state.placed = true;
  $("placing").hidden = true;
  changed();
}

// ---- history on this device ------------------------------------------------------------

function loadHistory() {
  try {
    const entries = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
    return Array.isArray(entries) ? entries : [];
  } catch (err) {
    return [];
  }
}

function record(answer) {
  if (answer.verdict.label === "test-mismatch") return;  // not a reading of the chosen test
  const entries = loadHistory();
  const entry = {
    id: state.historyId || Date.now().toString(36) + Math.random().toString(36).slice(2, 6),
    date: new Date().toISOString(),
    angle_deg: answer.measurement.angle_deg,
    foot: answer.options.side || "",
    protocol: answer.verdict.protocol,  // the test judged by, also when auto picked it
  };
  const at = entries.findIndex((e) => e.id === entry.id);
  if (at >= 0) entries[at] = { ...entry, date: entries[at].date };
  else entries.push(entry);
  state.historyId = entry.id;
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(entries));
  } catch (err) {
    // storage full or switched off: the measurement is still shown
  }
  showHistory();
}

function showHistory() {
  const entries = loadHistory();
  const charts = $("charts");
  charts.innerHTML = "";
  $("history-empty").hidden = entries.length > 0;
  $("export").disabled = $("clear").disabled = !entries.length;
  for (const foot of ["left", "right", ""]) {
    const mine = entries.filter((e) => e.foot === foot).sort((a, b) => a.date.localeCompare(b.date));
    if (mine.length) charts.append(chart(foot, mine));
  }
}

function chart(foot, entries) {
  const NS = "http://www.w3.org/2000/svg";
  const el = (name, attrs, parent) => {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.append(node);
    return node;
  };
  const box = document.createElement("div");
  box.className = "chart";
  const title = document.createElement("h3");
  title.textContent = foot ? `${foot[0].toUpperCase()}${foot.slice(1)} foot` : "Foot not said";
  box.append(title);
  const W = 320, H = 140, left = 34, right = 8, top = 8, bottom = 22;
  const angles = entries.map((e) => e.angle_deg);
  const normals = [...new Set(entries.map((e) => normalFor(e.protocol)).filter((n) => n != null))];
  const lo = Math.floor(Math.min(...angles, ...normals, 0) / 10) * 10;
  const hi = Math.ceil(Math.max(...angles, ...normals, lo + 10) / 10) * 10;
  const t0 = Date.parse(entries[0].date), t1 = Date.parse(entries[entries.length - 1].date);
  const x = (e, i) => left + (t1 > t0 ? (Date.parse(e.date) - t0) / (t1 - t0)
                                      : (entries.length > 1 ? i / (entries.length - 1) : 0.5)) * (W - left - right);
  const y = (v) => top + (hi - v) / (hi - lo) * (H - top - bottom);
  const last = entries[entries.length - 1];
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${title.textContent}: ${entries.length} measurement${entries.length > 1 ? "s" : ""}, `
      + `latest ${fmt(last.angle_deg)} degrees on ${last.date.slice(0, 10)}` });
  el("line", { x1: left, y1: y(lo), x2: W - right, y2: y(lo), class: "axis" }, svg);
  el("line", { x1: left, y1: y(hi), x2: left, y2: y(lo), class: "axis" }, svg);
  for (const v of [lo, hi]) el("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end" }, svg).textContent = `${v}\u00b0`;
  for (const normal of normals) {
    el("line", { x1: left, y1: y(normal), x2: W - right, y2: y(normal), class: "threshold" }, svg);
  }
  el("text", { x: left, y: H - 6 }, svg).textContent = entries[0].date.slice(0, 10);
  if (entries.length > 1) {
    el("text", { x: W - right, y: H - 6, "text-anchor": "end" }, svg).textContent = last.date.slice(0, 10);
  }
  el("polyline", { points: entries.map((e, i) => `${x(e, i).toFixed(1)},${y(e.angle_deg).toFixed(1)}`).join(" ") }, svg);
  for (const [i, e] of entries.entries()) el("circle", { cx: x(e, i), cy: y(e.angle_deg), r: 3.5 }, svg);
  box.append(svg);
  const note = document.createElement("p");
  note.className = "hint";
  note.textContent = `Latest ${fmt(last.angle_deg)}\u00b0 (${protocolTitle(last.protocol)}).`
    + (normals.length ? " Dashed: the normal minimum." : "");
  box.append(note);
  return box;
}

function protocolTitle(protocol) {
  const option = [...$("protocol").options].find((o) => o.value === protocol);
  return option ? option.textContent.replace(/ \(.*\)$/, "").toLowerCase() : protocol.replace(/_/g, " ");
}

function normalFor(protocol) {
  const option = [...$("protocol").options].find((o) => o.value === protocol);
  return option && option.dataset.normal ? Number(option.dataset.normal) : null;
}

function exportHistory() {
  const rows = [["date", "foot", "protocol", "angle_deg"]];
  for (const e of loadHistory()) rows.push([e.date, e.foot, e.protocol, e.angle_deg]);
  const csv = rows.map((row) => row.join(",")).join("\r\n") + "\r\n";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  link.download = "toeangle-history.csv";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function setUpHistory() {
  $("export").addEventListener("click", exportHistory);
  $("clear").addEventListener("click", () => { $("clear-yes").hidden = false; $("clear-yes").focus(); });
  $("clear-yes").addEventListener("click", () => {
    localStorage.removeItem(HISTORY_KEY);
    $("clear-yes").hidden = true;
    state.historyId = null;
    showHistory();
    $("history-title").focus();
    setStatus("The history on this device is cleared.");
  });
  showHistory();
}

document.addEventListener("DOMContentLoaded", () => {
  setUpPickers();
  setUpEditor();
  setUpHistory();
  $("protocol").addEventListener("change", showHow);
  for (const id of ["protocol", "side", "other", "pain"]) {  // a changed option re-scores the points shown
    $(id).addEventListener("change", () => { if (scoreable()) changed(); });
  }
  $("key").addEventListener("change", loadProtocols);
  $("form").addEventListener("submit", measure);
  $("undo").addEventListener("click", undo);
  $("reset").addEventListener("click", () => {
    state.undo.push(copyPoints(state.points));
    state.points = copyPoints(state.model);
    state.viewCorrection = state.answer.measurement ? state.answer.measurement.view_correction : null;
    changed();
  });
  $("switch-test").addEventListener("click", switchTest);
  $("place").addEventListener("click", () => { startPlacing(); $("editor").focus(); });
  showHow();
  loadProtocols().then(showHistory);
});
