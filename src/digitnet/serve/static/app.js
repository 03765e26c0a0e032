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
}

function showBar(li, p, top) {
  li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
  li.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
  li.classList.toggle("top", top);
}

// Drawing with pointer events: one code path for mouse, pen and touch.
let drawing = false, last = null, dirty = false, inFlight = false;
ctx.lineCap = "round";
ctx.lineJoin = "round";

function point(event) {
  const r = pad.getBoundingClientRect();
  return { x: (event.clientX - r.left) * pad.width / r.width, y: (event.clientY - r.top) * pad.height / r.height };
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  last = point(event);
  pad.setPointerCapture(event.pointerId);
  stroke(last, last);
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const p = point(event);
  stroke(last, p);
  last = p;
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { drawing = false; requestPrediction(); });
}

function stroke(a, b) {
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 18;
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
  dirty = true;
  requestPrediction();
}

// At most one request in flight; when it returns and the drawing changed meanwhile, ask again.
function requestPrediction() {
  if (!dirty || inFlight) return;
  dirty = false;
  inFlight = true;
  pad.toBlob(async (blob) => {
    try {
      const response = await fetch("/api/predict", { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
      const result = await response.json();
      if (response.ok) show(result); else showError(result.error || `HTTP ${response.status}`);
    } catch (error) {
      showError(`no answer from the server (${error})`);
    } finally {
      inFlight = false;
      if (dirty) requestPrediction();
    }
  }, "image/png");
}

function show(result) {
  statusEl.textContent = "";
  digitEl.textContent = String(result.digit);
  confidenceEl.textContent = `${(100 * result.confidence).toFixed(1)}% confident`;
  result.probabilities.forEach((p, d) => showBar(bars.children[d], p, d === result.digit));
  const image = preparedCtx.createImageData(28, 28);
  result.prepared.flat().forEach((v, i) => {
    image.data.set([v, v, v, 255], 4 * i);
  });
  const small = document.createElement("canvas");
  small.width = small.height = 28;
  small.getContext("2d").putImageData(image, 0, 0);
  preparedCtx.imageSmoothingEnabled = false;
  preparedCtx.drawImage(small, 0, 0, prepared.width, prepared.height);
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
