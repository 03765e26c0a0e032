// The drawing pad of both pages: pointer strokes (mouse, pen, finger) on a white canvas. While a
// person draws, the canvas goes as a PNG to an API route: at most one request in flight, and when
// it returns and the drawing changed meanwhile, one more. A Clear drops answers still in flight.
"use strict";

function livePad(canvas, url, { onAnswer, onError, lineWidth = 18 }) {
  const ctx = canvas.getContext("2d");
  let drawing = false, last = null, dirty = false, inFlight = false, generation = 0, moved = false;

  function point(event) {
    const r = canvas.getBoundingClientRect();
    return { x: (event.clientX - r.left) * canvas.width / r.width, y: (event.clientY - r.top) * canvas.height / r.height };
  }

  function stroke(a, b, send) {
    ctx.strokeStyle = "#000";
    ctx.lineWidth = lineWidth;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.stroke();
    dirty = true;
    if (send) request();
  }

  function request() {
    if (!dirty || inFlight) return;
    dirty = false;
    inFlight = true;
    const sent = generation;
    canvas.toBlob(async (blob) => {
      try {
        const response = await fetch(url, { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
        const result = await response.json();
        if (sent !== generation) return;  // the pad was cleared while this was in flight
        if (response.ok) onAnswer(result); else onError(result.error || `HTTP ${response.status}`);
      } catch (error) {
        onError(`no answer from the server (${error})`);
      } finally {
        inFlight = false;
        if (dirty) request();
      }
    }, "image/png");
  }

  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    moved = false;
    last = point(event);
    try {
      canvas.setPointerCapture(event.pointerId);  // keep the stroke when the finger leaves the pad
    } catch (error) {
      // a pointer the browser no longer tracks: the stroke still draws while it is over the pad
    }
    stroke(last, last, false);  // the dot is drawn, but a lone dot is no digit yet: nothing is sent
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const p = point(event);
    moved = true;
    stroke(last, p, true);
    last = p;
  });
  for (const type of ["pointerup", "pointercancel"]) {
    canvas.addEventListener(type, () => { drawing = false; if (moved) request(); });
  }

  function clear() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    dirty = false;
    generation += 1;
  }

  clear();
  return { clear };
}

// A 28x28 (or any h x w) grey image, 0-255 rows, drawn scaled into a rectangle of a canvas.
function drawGrey(ctx, rows, x, y, width, height) {
  const h = rows.length, w = rows[0].length;
  const image = new ImageData(w, h);
  rows.flat().forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
  const small = document.createElement("canvas");
  small.width = w;
  small.height = h;
  small.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, x, y, width, height);
}

function showHealth(footer) {
  fetch("/api/health").then((r) => r.json()).then((h) => {
    const acc = h.test_accuracy == null ? "" : `, test accuracy ${(100 * h.test_accuracy).toFixed(2)}%`;
    footer.textContent = `model ${h.model}: recipe ${h.recipe}, ${h.network}, trained on ${h.dataset}${acc}`;
  }).catch(() => {});
}
