// The page of `deepfake-audio serve`: upload, play, and per-window P(fake) over the waveform.
// No library, no network beyond this server. The waveform is drawn from the decoded clip
// (Web Audio decodeAudioData); the scores come from POST /api/analyze.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, url: null, peaks: null, duration: 0, doc: null, stopAt: null, models: null };

const RULES = {
  eer: "the equal-error-rate threshold measured on the model's validation set, stored in its checkpoint (carried to this prior through its calibration)",
  bayes: "the Bayes decision on the calibrated probability: call it fake when that costs less, for the stated prior and costs",
  threshold: "a fixed threshold chosen for this request",
};

function fmt(p) { return (typeof p === "number" && isFinite(p)) ? p.toFixed(3) : "–"; }
function secs(t) { return t < 60 ? `${t.toFixed(2)} s` : `${Math.floor(t / 60)} min ${(t % 60).toFixed(1)} s`; }
function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

async function loadModels() {
  try {
    const response = await fetch("/api/models");
    const info = await response.json();
    state.models = info;
    const names = info.models.filter((m) => m.kind === "detector")
      .map((m) => `${m.name} (${m.architecture}, ${m.window_seconds} s windows at ${m.sample_rate} Hz)`);
    $("models-line").textContent = `Models: ${names.join("; ")}. Verdict by: ${info.deciding_model}.`;
  } catch (err) {
    $("models-line").textContent = `Could not list the models: ${err}`;
  }
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function chooseFile(file) {
  if (!file) return;
  state.file = file;
  state.peaks = null;
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(file);
  $("audio").src = state.url;
  $("analyze").disabled = false;
  setStatus(`${file.name} (${(file.size / 1048576).toFixed(2)} MB) ready: press Analyze.`);
  decodeWaveform(file);
}

// Min/max per pixel column of the clip's first channel, for the waveform.
async function decodeWaveform(file) {
  try {
    const Context = window.AudioContext || window.webkitAudioContext;
    const context = new Context();
    const buffer = await context.decodeAudioData(await file.arrayBuffer());
    context.close();
    const data = buffer.getChannelData(0);
    const columns = 2000;
    const step = Math.max(1, Math.floor(data.length / columns));
    const peaks = [];
    for (let i = 0; i < data.length; i += step) {
      let lo = 1, hi = -1;
      for (let j = i; j < Math.min(i + step, data.length); j++) { lo = Math.min(lo, data[j]); hi = Math.max(hi, data[j]); }
      peaks.push([lo, hi]);
    }
    state.peaks = peaks;
    state.duration = buffer.duration;
  } catch (err) {
    state.peaks = null;  // the browser cannot decode it: the timeline still shows the scores
  }
  if (state.doc) render(state.doc);
}

async function analyze(event) {
  event.preventDefault();
  if (!state.file) return;
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  for (const name of ["threshold", "aggregate", "hop"]) {
    const value = $(name).value.trim();
    if (value) form.append(name, value);
  }
  $("analyze").disabled = true;
  setStatus("Analyzing…");
  try {
    const response = await fetch("/api/analyze", { method: "POST", body: form });
    const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) {
      const wait = response.headers.get("Retry-After");
      setStatus(`Not analyzed: ${body.error || response.statusText}${wait ? ` (retry in ${wait} s)` : ""}`, true);
      return;
    }
    state.doc = body;
    setStatus(`Analyzed ${body.files[0].path}.`);
    render(body);
  } catch (err) {
    setStatus(`Not analyzed: ${err}`, true);
  } finally {
    $("analyze").disabled = false;
  }
}

function explain(decision, threshold, model) {
  const rule = decision.rule;
  let where = RULES[rule] || rule;
  if (rule === "eer" && model === "ensemble") where = "the mean of the models' validation equal-error thresholds";
  if (rule === "eer" && (model === "fusion" || String(model).startsWith("panel"))) where = "the threshold fitted with the fusion on validation scores";
  let costs = "";
  if (rule === "bayes") costs = ` (cost of calling a real clip fake ${decision.cost_miss}, of calling a fake clip real ${decision.cost_fa})`;
  return `Threshold ${fmt(threshold)} on P(fake), rule "${rule}": ${where}${costs}. Prior P(fake) ${decision.prior_fake}; ${decision.calibrated ? "calibrated" : "uncalibrated"} scores.`;
}

function render(doc) {
  const file = doc.files[0];
  $("result").hidden = false;
  const card = $("verdict");
  card.replaceChildren();
  const fake = file.verdict === "FAKE";
  card.className = `card ${fake ? "fake" : "real"}`;
  card.append(el("h2", {}, fake ? "FAKE: this clip sounds synthetic" : "REAL: this clip does not sound synthetic"));
  card.append(el("p", {}, `P(fake) = ${fmt(file.p_fake)}, ${fake ? "at or above" : "below"} the threshold ${fmt(file.threshold)}, by ${file.model} over ${secs(file.duration)} (${doc.aggregate} of the window scores).`));
  card.append(el("p", { class: "muted" }, explain(file.decision, file.threshold, file.model)));
  card.append(el("p", { class: "muted" }, "P(fake) is the models' probability that the speech is synthetic at the stated prior, not a proof: a REAL verdict does not show the clip is authentic."));
  for (const [name, v] of Object.entries(file.fused || {})) {
    if (name !== file.model) card.append(el("p", {}, `${name}: ${v.verdict}, P(fake) ${fmt(v.p_fake)}, threshold ${fmt(v.threshold)}`));
  }
  for (const warning of doc.warnings || []) card.append(el("p", { class: "warn" }, `Note: ${warning}`));

  const holder = $("timelines");
  holder.replaceChildren();
  const entries = Object.entries(file.models);
  for (const [name, verdict] of entries) {
    const box = el("div", { class: entries.length > 2 ? "timeline compact" : "timeline" });
    const head = el("div", { class: "head" });
    const title = el("span");
    title.append(el("b", {}, name), document.createTextNode(` — ${verdict.verdict}, P(fake) ${fmt(verdict.p_fake)}, threshold ${fmt(verdict.threshold)} (${verdict.decision.rule})`));
    head.append(title, el("span", { class: "muted" }, `${(verdict.windows || []).length} windows`));
    const canvas = el("canvas", { role: "img", "aria-label": `P(fake) per window for ${name}` });
    box.append(head, canvas);
    holder.append(box);
    draw(canvas, verdict, file.duration);
    canvas.addEventListener("click", (event) => playAt(canvas, verdict, file.duration, event));
  }
}

function hatch(ctx) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 6;
  const t = tile.getContext("2d");
  t.fillStyle = "rgba(59,91,146,0.25)";
  t.fillRect(0, 0, 6, 6);
  t.strokeStyle = "#3b5b92";
  t.lineWidth = 1.6;
  t.beginPath(); t.moveTo(0, 6); t.lineTo(6, 0); t.moveTo(-1, 1); t.lineTo(1, -1); t.moveTo(5, 7); t.lineTo(7, 5); t.stroke();
  return ctx.createPattern(tile, "repeat");
}

function draw(canvas, verdict, duration) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const left = 34, bottom = 14, plotW = width - left - 4, plotH = height - bottom - 4;
  const x = (t) => left + (duration > 0 ? (t / duration) * plotW : 0);
  const y = (p) => 4 + (1 - p) * plotH;
  ctx.clearRect(0, 0, width, height);
  if (state.peaks) {  // the waveform, centred, in grey
    ctx.fillStyle = "#b9bfc7";
    const n = state.peaks.length;
    for (let i = 0; i < n; i++) {
      const [lo, hi] = state.peaks[i];
      const px = left + (i / n) * plotW;
      ctx.fillRect(px, 4 + plotH / 2 - (hi * plotH) / 2, Math.max(1, plotW / n), Math.max(1, ((hi - lo) * plotH) / 2));
    }
  }
  const pattern = hatch(ctx);
  for (const w of verdict.windows || []) {  // one bar per window, its height P(fake)
    const above = w.p_fake >= verdict.threshold;
    ctx.fillStyle = above ? pattern : "rgba(59,91,146,0.30)";
    ctx.strokeStyle = "#3b5b92";
    ctx.lineWidth = 1;
    const x0 = x(w.start), x1 = Math.max(x(w.end), x0 + 1);
    ctx.fillRect(x0, y(w.p_fake), x1 - x0, y(0) - y(w.p_fake));
    ctx.strokeRect(x0 + 0.5, y(w.p_fake) + 0.5, Math.max(0, x1 - x0 - 1), y(0) - y(w.p_fake));
  }
  ctx.setLineDash([6, 4]);  // the threshold
  ctx.strokeStyle = "#1b1f24"; ctx.lineWidth = 1.5;
  ctx.beginPath(); ctx.moveTo(left, y(verdict.threshold)); ctx.lineTo(left + plotW, y(verdict.threshold)); ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = "#5b636e"; ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "right";
  for (const p of [0, 0.5, 1]) ctx.fillText(p.toFixed(1), left - 4, y(p) + 4);
  ctx.textAlign = "left";
  ctx.fillText("0 s", left, height - 2);
  ctx.textAlign = "right";
  ctx.fillText(secs(duration), left + plotW, height - 2);
  const label = `threshold ${fmt(verdict.threshold)}`;  // on a white box, readable over bars
  const labelW = ctx.measureText(label).width + 6;
  ctx.fillStyle = "rgba(255,255,255,0.9)";
  ctx.fillRect(left + plotW - labelW - 2, y(verdict.threshold) - 15, labelW, 13);
  ctx.fillStyle = "#1b1f24";
  ctx.fillText(label, left + plotW - 5, y(verdict.threshold) - 5);
}

function playAt(canvas, verdict, duration, event) {
  const rect = canvas.getBoundingClientRect();
  const left = 34, plotW = rect.width - left - 4;
  const t = ((event.clientX - rect.left - left) / plotW) * duration;
  const hit = (verdict.windows || []).find((w) => t >= w.start && t < w.end);
  const audio = $("audio");
  if (!hit || !audio.src) return;
  audio.currentTime = hit.start;
  state.stopAt = hit.end;
  audio.play();
  $("play-hint").textContent = `Playing ${hit.start.toFixed(2)}–${hit.end.toFixed(2)} s: P(fake) ${fmt(hit.p_fake)} (${hit.p_fake >= verdict.threshold ? "at or above" : "below"} the threshold).`;
}

$("audio").addEventListener("timeupdate", () => {
  const audio = $("audio");
  if (state.stopAt !== null && audio.currentTime >= state.stopAt) { audio.pause(); state.stopAt = null; }
});
$("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); chooseFile(e.dataTransfer.files[0]); });
$("form").addEventListener("submit", analyze);
window.addEventListener("resize", () => { if (state.doc) render(state.doc); });
loadModels();
