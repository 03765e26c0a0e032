// The draw-a-digit page: strokes on the pad (pad.js) go to POST /api/predict as a PNG, while drawing.
"use strict";

const pad = document.getElementById("pad");
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

function showBar(li, p, top) {
  li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
  li.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
  li.classList.toggle("top", top);
}

const drawPad = livePad(pad, "/api/predict", { onAnswer: show, onError: showError });

function clearPad() {
  drawPad.clear();
  preparedCtx.clearRect(0, 0, prepared.width, prepared.height);
  digitEl.textContent = "?";
  confidenceEl.textContent = "draw a digit";
  statusEl.textContent = "";
  for (const li of bars.children) showBar(li, 0, false);
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
  items.forEach((item, k) => drawGrey(preparedCtx, item.prepared, k * cell, 0, cell, cell));
}

function showError(message) {
  statusEl.textContent = message.includes("no digit found") ? "" : message;
  if (message.includes("no digit found")) {
    digitEl.textContent = "?";
    confidenceEl.textContent = "draw a digit";
  }
}

document.getElementById("clear").addEventListener("click", clearPad);

showHealth(document.getElementById("model"));
clearPad();
