// A drawing pad light enough for live drawing: a plain 2D canvas (no editor layers, no WebGL). Black pen and a
// white eraser on a white page; each finished stroke sets the component's value to the page as one PNG data URL
// and fires `input` (one request per stroke, the picture inside it: nothing uploaded first).
const canvas = element.querySelector("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const W = canvas.width, H = canvas.height;
const size = element.querySelector("input[type=range]");
const button = (name) => element.querySelector(`button[data-action=${name}]`);
const past = [], future = [];
const MAX_UNDO = 40;
let tool = "pen", last = null;

function page() {
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, W, H);
}
function state() {
  button("undo").disabled = past.length === 0;
  button("redo").disabled = future.length === 0;
  for (const t of ["pen", "eraser"]) button(t).setAttribute("aria-pressed", String(tool === t));
}
function send() {
  props.value = past.length === 0 && !element.dataset.drawn ? "" : canvas.toDataURL("image/png");
  trigger("input");
}
function remember() {
  past.push(ctx.getImageData(0, 0, W, H));
  if (past.length > MAX_UNDO) past.shift();
  future.length = 0;
  element.dataset.drawn = "1";
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
  ctx.strokeStyle = tool === "pen" ? "#000000" : "#ffffff";
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

canvas.addEventListener("pointerdown", (e) => {
  if (e.pointerType === "mouse" && e.button !== 0) return;
  e.preventDefault();
  canvas.setPointerCapture(e.pointerId);
  canvas.focus();
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
button("pen").addEventListener("click", () => { tool = "pen"; state(); });
button("eraser").addEventListener("click", () => { tool = "eraser"; state(); });
button("undo").addEventListener("click", () => step(past, future));
button("redo").addEventListener("click", () => step(future, past));
button("clear").addEventListener("click", () => {
  past.length = future.length = 0;
  delete element.dataset.drawn;
  page();
  state();
  send();
});
element.addEventListener("keydown", (e) => {
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === "z") {
    e.preventDefault();
    e.shiftKey ? step(future, past) : step(past, future);
  } else if (e.target === canvas && (key === "b" || key === "e")) {
    tool = key === "b" ? "pen" : "eraser";
    state();
  }
});
page();
state();
