// The look-inside page: while a person draws, POST /api/inspect returns every layer's activations;
// they are drawn as grids (a unit per cell, or a feature map per tile). Clicking a unit of the first
// layer fetches its incoming weights from /api/units/<n>.
"use strict";

const layersEl = document.getElementById("layers");
const inputCtx = document.getElementById("input").getContext("2d");
const bars = document.getElementById("bars");
const statusEl = document.getElementById("status");
let latest = null;  // the last answer: the unit views need its input
let shownUnit = null;

for (let d = 0; d < 10; d++) {
  const li = document.createElement("li");
  li.dataset.digit = String(d);
  li.innerHTML = `<span>${d}</span><span class="track"><span class="fill"></span></span><span class="pct">0%</span>`;
  bars.appendChild(li);
}

const pad = livePad(document.getElementById("pad"), "/api/inspect", { onAnswer: show, onError: showError, lineWidth: 20 });

// Cells per row for a layer: square-ish grids (256 -> 16 x 16, 128 -> 16 x 8, 10 -> 10 x 1).
function columnsFor(count) {
  return count <= 10 ? count : Math.ceil(Math.sqrt(count) / 2) * 2;
}

function heat(value, max) {
  const v = Math.max(0, Math.min(1, max > 0 ? value / max : 0));
  return [Math.round(255 * v), Math.round(200 * v), Math.round(60 + 120 * v)];
}

function drawLayer(layer, index) {
  let wrap = layersEl.children[index];
  if (!wrap) {
    wrap = document.createElement("figure");
    wrap.className = "layer";
    wrap.innerHTML = `<canvas></canvas><figcaption></figcaption>`;
    layersEl.appendChild(wrap);
  }
  const canvas = wrap.querySelector("canvas");
  canvas.dataset.layer = layer.name;
  wrap.querySelector("figcaption").textContent =
    `${layer.name}: ${layer.shape.join(" x ")}${layer.kind === "maps" ? " (channels x height x width)" : " units"}`;
  const values = layer.values;
  const max = Math.max(...values.map(Math.abs), 1e-9);
  if (layer.kind === "units") {
    const columns = columnsFor(values.length), rows = Math.ceil(values.length / columns);
    const cell = values.length <= 10 ? 28 : 14;
    canvas.width = columns * cell;
    canvas.height = rows * cell;
    canvas.dataset.columns = String(columns);
    canvas.dataset.cell = String(cell);
    const ctx = canvas.getContext("2d");
    values.forEach((v, i) => {
      const [r, g, b] = layer.name === "output" ? heat(v - Math.min(...values), max - Math.min(...values)) : heat(v, max);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect((i % columns) * cell, Math.floor(i / columns) * cell, cell - 1, cell - 1);
    });
    if (layer.name === "output") {
      ctx.fillStyle = "#000";
      ctx.font = "14px system-ui";
      values.forEach((v, i) => ctx.fillText(String(i), i * cell + 9, 19));
    }
  } else {
    const [channels, h, w] = layer.shape;
    const columns = columnsFor(channels), rows = Math.ceil(channels / columns);
    const scale = h >= 14 ? 2 : 4;
    canvas.width = columns * (w * scale + 2);
    canvas.height = rows * (h * scale + 2);
    canvas.dataset.columns = String(columns);
    canvas.dataset.cell = String(w * scale + 2);
    const ctx = canvas.getContext("2d");
    for (let c = 0; c < channels; c++) {
      const image = new ImageData(w, h);
      for (let p = 0; p < h * w; p++) image.data.set([...heat(values[c * h * w + p], max), 255], 4 * p);
      const tile = document.createElement("canvas");
      tile.width = w;
      tile.height = h;
      tile.getContext("2d").putImageData(image, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(tile, (c % columns) * (w * scale + 2), Math.floor(c / columns) * (h * scale + 2), w * scale, h * scale);
    }
  }
  canvas.onclick = index === 0 ? (event) => pickUnit(canvas, event) : null;
  canvas.classList.toggle("clickable", index === 0);
}

function pickUnit(canvas, event) {
  const r = canvas.getBoundingClientRect();
  const cell = Number(canvas.dataset.cell), columns = Number(canvas.dataset.columns);
  const x = (event.clientX - r.left) * canvas.width / r.width, y = (event.clientY - r.top) * canvas.height / r.height;
  const unit = Math.floor(y / cell) * columns + Math.floor(x / cell);
  showUnit(unit);
}

async function showUnit(unit) {
  const response = await fetch(`/api/units/${unit}`);
  const answer = await response.json();
  if (!response.ok) { statusEl.textContent = answer.error; return; }
  shownUnit = answer;
  document.getElementById("unit").hidden = false;
  document.getElementById("unit-title").textContent = `${answer.layer}, unit ${answer.unit}`;
  drawSigned(document.getElementById("unit-weights"), answer.weights);
  drawAgreement();
  document.getElementById("unit-weights").dataset.unit = String(answer.unit);
}

// Red for positive, blue for negative, white for zero; each image on its own scale.
function drawSigned(canvas, rows) {
  const h = rows.length, w = rows[0].length, flat = rows.flat();
  const max = Math.max(...flat.map(Math.abs), 1e-9);
  const image = new ImageData(w, h);
  flat.forEach((v, i) => {
    const t = Math.min(1, Math.abs(v) / max);
    const rgb = v >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 - t), 255 * (1 - t), 255];
    image.data.set([...rgb.map(Math.round), 255], 4 * i);
  });
  const small = document.createElement("canvas");
  small.width = w;
  small.height = h;
  small.getContext("2d").putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

// The unit's weights times the input scaled as the network scales it (-1 paper, +1 ink): the terms
// of its weighted sum, pixel by pixel. For a convolution kernel, its feature map is shown instead.
function drawAgreement() {
  if (!shownUnit || !latest) return;
  const canvas = document.getElementById("unit-agreement");
  if (shownUnit.weights.length === 28) {
    drawSigned(canvas, shownUnit.weights.map((row, y) => row.map((w, x) => w * (2 * latest.input[y][x] / 255 - 1))));
  } else {
    const first = latest.layers[0], [, h, w] = first.shape, base = shownUnit.unit * h * w;
    const rows = Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => first.values[base + y * w + x]));
    drawSigned(canvas, rows);
  }
}

function show(result) {
  latest = result;
  statusEl.textContent = "";
  drawGrey(inputCtx, result.input, 0, 0, 140, 140);
  document.getElementById("digit").textContent = String(result.digit);
  document.getElementById("confidence").textContent = `${(100 * result.confidence).toFixed(1)}% confident`;
  result.probabilities.forEach((p, d) => {
    const li = bars.children[d];
    li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
    li.classList.toggle("top", d === result.digit);
  });
  result.layers.forEach(drawLayer);
  const c = result.contributions, hidden = result.layers[result.layers.length - 2].name;
  document.getElementById("contrib-title").textContent =
    `what decided the answer: units of ${hidden} that pushed output ${c.digit} up or down (activation x weight)`;
  for (const [id, list] of [["up", c.up], ["down", c.down]]) {
    document.getElementById(id).innerHTML =
      list.map((u) => `<li>unit ${u.unit}: ${u.push >= 0 ? "+" : ""}${u.push.toFixed(3)}</li>`).join("");
  }
  drawAgreement();
}

function showError(message) {
  statusEl.textContent = message.includes("no digit found") ? "" : message;
}

document.getElementById("clear").addEventListener("click", () => {
  pad.clear();
  latest = null;
  layersEl.innerHTML = "";
  inputCtx.clearRect(0, 0, 140, 140);
  document.getElementById("digit").textContent = "?";
  document.getElementById("confidence").textContent = "draw a digit";
  document.getElementById("up").innerHTML = document.getElementById("down").innerHTML = "";
  statusEl.textContent = "";
});
showHealth(document.getElementById("model"));
