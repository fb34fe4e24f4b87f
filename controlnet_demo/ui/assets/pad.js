// A drawing pad light enough for live drawing: a plain 2D canvas (no editor layers, no WebGL). A pen in the pad's
// ink colours, an eraser that paints the paper's colour, and (for depth maps) a fill; each finished stroke sets the
// component's value to the page as one PNG data URL and fires `input` (one request per stroke, the picture inside
// it: nothing uploaded first). A PNG data URL set by the server (a detected map to edit) replaces the page.
const root = element.querySelector(".pad");
const canvas = root.querySelector("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
let W = canvas.width, H = canvas.height;
const PAPER = root.dataset.paper;
const size = root.querySelector("input[type=range]");
const button = (name) => root.querySelector(`button[data-action=${name}]`);
const swatches = [...root.querySelectorAll("button[data-color]")];
const past = [], future = [];
const MAX_UNDO = 40;
let tool = "pen", last = null, lastSent = "";
let ink = swatches.length ? swatches[0].dataset.color : "#000000";

function page() {
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, W, H);
}
function state() {
  button("undo").disabled = past.length === 0;
  button("redo").disabled = future.length === 0;
  for (const t of ["pen", "eraser", "fill"]) button(t)?.setAttribute("aria-pressed", String(tool === t));
  for (const b of swatches) b.setAttribute("aria-pressed", String(b.dataset.color === ink));
}
function send() {
  lastSent = props.value = past.length === 0 && !root.dataset.drawn ? "" : canvas.toDataURL("image/png");
  trigger("input");
}
function remember() {
  past.push(ctx.getImageData(0, 0, W, H));
  if (past.length > MAX_UNDO) past.shift();
  future.length = 0;
  root.dataset.drawn = "1";
  state();
}
function at(e) {
  const r = canvas.getBoundingClientRect();
  return [((e.clientX - r.left) * W) / r.width, ((e.clientY - r.top) * H) / r.height];
}
function width(e) {
  const w = Number(size.value);
  return e.pointerType === "pen" && e.pressure > 0 ? w * (0.4 + 1.2 * e.pressure) : w;
}
function line(a, b, w) {
  ctx.strokeStyle = tool === "eraser" ? PAPER : ink;
  ctx.lineWidth = w;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(a[0], a[1]);
  ctx.lineTo(b[0], b[1]);
  ctx.stroke();
}
function step(history, other) {
  if (history.length === 0) return;
  other.push(ctx.getImageData(0, 0, W, H));
  ctx.putImageData(history.pop(), 0, 0);
  state();
  send();
}

function fill([x0, y0]) {  // the region of one shade around the point, in the ink (4-connected, a small tolerance)
  const image = ctx.getImageData(0, 0, W, H), d = image.data;
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(ink.slice(i, i + 2), 16));
  const start = (Math.floor(y0) * W + Math.floor(x0)) * 4;
  const seed = [d[start], d[start + 1], d[start + 2]];
  if (Math.abs(seed[0] - r) + Math.abs(seed[1] - g) + Math.abs(seed[2] - b) === 0) return false;
  const same = (i) => Math.abs(d[i] - seed[0]) + Math.abs(d[i + 1] - seed[1]) + Math.abs(d[i + 2] - seed[2]) <= 24;
  const stack = [Math.floor(y0) * W + Math.floor(x0)], seen = new Uint8Array(W * H);
  while (stack.length) {
    const p = stack.pop();
    if (seen[p] || !same(p * 4)) continue;
    seen[p] = 1;
    d.set([r, g, b, 255], p * 4);
    const x = p % W;
    if (x > 0) stack.push(p - 1);
    if (x < W - 1) stack.push(p + 1);
    if (p >= W) stack.push(p - W);
    if (p < W * (H - 1)) stack.push(p + W);
  }
  ctx.putImageData(image, 0, 0);
  return true;
}

canvas.addEventListener("pointerdown", (e) => {
  if (e.pointerType === "mouse" && e.button !== 0) return;
  e.preventDefault();
  canvas.focus();
  if (tool === "fill") {
    remember();
    if (fill(at(e))) {
      send();
    } else {  // already that shade: nothing changed
      past.pop();
      state();
    }
    return;
  }
  canvas.setPointerCapture(e.pointerId);
  remember();
  last = at(e);
  line(last, last, width(e));
});
canvas.addEventListener("pointermove", (e) => {
  if (last === null) return;
  for (const c of e.getCoalescedEvents ? e.getCoalescedEvents() : [e]) {
    const p = at(c);
    line(last, p, width(c));
    last = p;
  }
});
const end = () => {
  if (last === null) return;
  last = null;
  send();
};
canvas.addEventListener("pointerup", end);
canvas.addEventListener("pointercancel", end);
for (const t of ["pen", "eraser", "fill"]) button(t)?.addEventListener("click", () => { tool = t; state(); });
for (const b of swatches) {
  b.addEventListener("click", () => {
    ink = b.dataset.color;
    if (tool === "eraser") tool = "pen";
    state();
  });
}
button("undo").addEventListener("click", () => step(past, future));
button("redo").addEventListener("click", () => step(future, past));
button("clear").addEventListener("click", () => {
  past.length = future.length = 0;
  delete root.dataset.drawn;
  page();
  state();
  send();
});
function open(url) {  // a map from the server: the new page, with no history
  const picture = new Image();
  picture.onload = () => {
    canvas.width = W = picture.naturalWidth;
    canvas.height = H = picture.naturalHeight;
    canvas.style.aspectRatio = `${W} / ${H}`;
    ctx.drawImage(picture, 0, 0);
    past.length = future.length = 0;
    root.dataset.drawn = "1";
    state();
  };
  picture.src = url;
}
watch("value", () => {
  const value = props.value || "";
  if (value === lastSent) return;
  lastSent = value;
  if (value.startsWith("data:image/")) {
    open(value);
  } else if (!value) {
    past.length = future.length = 0;
    delete root.dataset.drawn;
    page();
    state();
  }
});
root.addEventListener("keydown", (e) => {
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === "z") {
    e.preventDefault();
    e.shiftKey ? step(future, past) : step(past, future);
  } else if (e.target === canvas && (key === "b" || key === "e" || (key === "f" && button("fill")))) {
    tool = { b: "pen", e: "eraser", f: "fill" }[key];
    state();
  }
});
page();
state();
