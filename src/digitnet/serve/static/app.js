// The draw-a-digit page: strokes on a canvas go to POST /api/predict as a PNG, while drawing.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const prepared = document.getElementById("prepared");
const preparedCtx = prepared.getContext("2d");
const digitEl = document.getElementById("digit");
const confidenceEl = document.getElementById("confidence");
const statusEl = document.getElementById("status");
const bars = document.getElementById("bars");

for (let d = 0; d < 10; d++) {
  const li = document.createElement("li");
  li.dataset.digit = String(d);
  li.innerHTML = `<span>${d}</span><span class="track"><span class="fill"></span></span><span class="pct">0%</span>`;
  bars.appendChild(li);
}

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  preparedCtx.clearRect(0, 0, prepared.width, prepared.height);
  digitEl.textContent = "?";
  confidenceEl.textContent = "draw a digit";
  statusEl.textContent = "";
  for (const li of bars.children) showBar(li, 0, false);
  dirty = false;
  generation += 1;
}

function showBar(li, p, top) {
  li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
  li.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
  li.classList.toggle("top", top);
}

// Drawing with pointer events: one code path for mouse, pen and touch.
// generation counts Clears: an answer to a request sent before the last Clear is dropped.
let drawing = false, last = null, dirty = false, inFlight = false, generation = 0, moved = false;
ctx.lineCap = "round";
ctx.lineJoin = "round";

function point(event) {
  const r = pad.getBoundingClientRect();
  return { x: (event.clientX - r.left) * pad.width / r.width, y: (event.clientY - r.top) * pad.height / r.height };
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  moved = false;
  last = point(event);
  pad.setPointerCapture(event.pointerId);
  stroke(last, last, false);  // the dot is drawn, but a lone dot is no digit yet: nothing is sent
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const p = point(event);
  moved = true;
  stroke(last, p, true);
  last = p;
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { drawing = false; if (moved) requestPrediction(); });
}

function stroke(a, b, send) {
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 18;
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
  dirty = true;
  if (send) requestPrediction();
}

// At most one request in flight; when it returns and the drawing changed meanwhile, ask again.
function requestPrediction() {
  if (!dirty || inFlight) return;
  dirty = false;
  inFlight = true;
  const sent = generation;
  pad.toBlob(async (blob) => {
    try {
      const response = await fetch("/api/predict", { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
      const result = await response.json();
      if (sent !== generation) return;  // the pad was cleared while this was in flight
      if (response.ok) show(result); else showError(result.error || `HTTP ${response.status}`);
    } catch (error) {
      showError(`no answer from the server (${error})`);
    } finally {
      inFlight = false;
      if (dirty) requestPrediction();
    }
  }, "image/png");
}

// One digit: its bars and 28x28 input. Several: the string, each digit's confidence, the inputs side by side
// and the bars of the least confident digit (the one to check).
function show(result) {
  statusEl.textContent = "";
  const items = result.items;
  digitEl.textContent = result.digits;
  confidenceEl.textContent = items.map((item) => `${(100 * item.confidence).toFixed(1)}%`).join(" ") + " confident";
  const weakest = items.reduce((a, b) => (b.confidence < a.confidence ? b : a));
  weakest.probabilities.forEach((p, d) => showBar(bars.children[d], p, d === weakest.digit));
  preparedCtx.clearRect(0, 0, prepared.width, prepared.height);
  const cell = Math.min(prepared.height, prepared.width / items.length);
  items.forEach((item, k) => {
    const image = preparedCtx.createImageData(28, 28);
    item.prepared.flat().forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
    const small = document.createElement("canvas");
    small.width = small.height = 28;
    small.getContext("2d").putImageData(image, 0, 0);
    preparedCtx.imageSmoothingEnabled = false;
    preparedCtx.drawImage(small, k * cell, 0, cell, cell);
  });
}

function showError(message) {
  statusEl.textContent = message.includes("no digit found") ? "" : message;
  if (message.includes("no digit found")) {
    digitEl.textContent = "?";
    confidenceEl.textContent = "draw a digit";
  }
}

document.getElementById("clear").addEventListener("click", clearPad);

fetch("/api/health").then((r) => r.json()).then((h) => {
  const acc = h.test_accuracy == null ? "" : `, test accuracy ${(100 * h.test_accuracy).toFixed(2)}%`;
  document.getElementById("model").textContent =
    `model ${h.model}: recipe ${h.recipe}, trained on ${h.dataset}${acc}`;
}).catch(() => {});

clearPad();
