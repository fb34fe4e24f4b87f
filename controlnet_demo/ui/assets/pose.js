// The pose keypoint editor: OpenPose's 18 body keypoints per person, drawn as controlnet-aux draws the map the pose
// ControlNet reads (limbs as ellipses at 60 % of their colour, joints as dots), on a plain 2D canvas. Drag a joint
// with the mouse, pen or finger; or click it (Tab moves from joint to joint) and move it with the arrow keys (Shift:
// 10 px). H hides or shows the selected joint, Delete removes its person. The value is "" while Generate reads the
// image, else the pose as OpenPose JSON (the A1111 editor's layout, in pixels of the canvas); each change sets it and
// fires `input`. A value set by the server (a detected pose, a pasted JSON) is loaded.
const root = element.querySelector(".pose-editor");
const canvas = root.querySelector("canvas");
const ctx = canvas.getContext("2d");
const status = element.querySelector(".pose-status");
const announce = element.querySelector(".pose-live");
const fileInput = element.querySelector("input[type=file]");
const button = (name) => element.querySelector(`button[data-action=${name}]`);
// What it writes is in the page's language: tr(english, values) looks the text up in the table the page's <head>
// holds (ui/i18n.py); T() only marks a text for that table (the server reads this file for tr and T).
const T = (text) => text;
const tr = (text, values = {}) => (window.controlnetDemoText || ((t) => t))(text)
  .replace(/\{(\w+)\}/g, (m, key) => (key in values ? values[key] : m));
class PoseError extends Error {  // a refusal of a pose, in words that follow the page's language
  constructor(text, values = {}) { super(tr(text, values)); this.text = text; this.values = values; }
  words() { return tr(this.text, this.values); }
}
const reason = (err) => (err instanceof PoseError ? err.words() : err.message);
const NAMES = [T("nose"), T("neck"), T("right shoulder"), T("right elbow"), T("right wrist"), T("left shoulder"),
  T("left elbow"), T("left wrist"), T("right hip"), T("right knee"), T("right ankle"), T("left hip"), T("left knee"),
  T("left ankle"), T("right eye"), T("left eye"), T("right ear"), T("left ear")];
const LIMBS = [[1, 2], [1, 5], [2, 3], [3, 4], [5, 6], [6, 7], [1, 8], [8, 9], [9, 10], [1, 11], [11, 12], [12, 13],
  [1, 0], [0, 14], [14, 16], [0, 15], [15, 17]];  // controlnet-aux's limbSeq, from 0
const COLORS = [[255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
  [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
  [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85]];
const STANDING = JSON.parse(root.dataset.standing);  // 18 [x, y] in 0..1
const MAX_PEOPLE = Number(root.dataset.maxPeople);
const GRAB = 14;  // px on screen

let people = [];  // each: 18 {x, y, hidden}
let used = false, selected = null, dragging = false, lastSent = null;
let message = null;  // what the status says instead of the usual (a function: its words in the page's language)

function figure(dx = 0, scale = 1) {
  return STANDING.map(([x, y]) => ({
    x: (0.5 + (x - 0.5) * scale + dx) * canvas.width, y: (0.5 + (y - 0.5) * scale) * canvas.height, hidden: false,
  }));
}
function rgb(c, f = 1) {
  return `rgb(${c.map((v) => Math.floor(v * f)).join(",")})`;
}
function draw() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (const person of people) {
    LIMBS.forEach(([a, b], i) => {
      const p = person[a], q = person[b];
      if (p.hidden || q.hidden) return;
      const length = Math.hypot(p.x - q.x, p.y - q.y);
      ctx.fillStyle = rgb(COLORS[i], 0.6);
      ctx.beginPath();
      ctx.ellipse((p.x + q.x) / 2, (p.y + q.y) / 2, length / 2, 4, Math.atan2(q.y - p.y, q.x - p.x), 0, 2 * Math.PI);
      ctx.fill();
    });
    person.forEach((p, j) => {
      if (p.hidden) return;
      ctx.fillStyle = rgb(COLORS[j]);
      ctx.beginPath();
      ctx.arc(p.x, p.y, 4, 0, 2 * Math.PI);
      ctx.fill();
    });
  }
  // editor marks, never part of the map: hidden joints as grey rings, the selected joint ringed in white
  ctx.lineWidth = 1.5;
  people.forEach((person, k) => person.forEach((p, j) => {
    const isSelected = selected && selected[0] === k && selected[1] === j;
    if (!p.hidden && !isSelected) return;
    ctx.strokeStyle = isSelected ? "#fff" : "#888";
    ctx.setLineDash(p.hidden ? [3, 3] : []);
    ctx.beginPath();
    ctx.arc(p.x, p.y, 9, 0, 2 * Math.PI);
    ctx.stroke();
  }));
  ctx.setLineDash([]);
}
function json() {
  const round = (v) => Math.round(v * 100) / 100;
  return JSON.stringify({
    people: people.map((person) => ({
      pose_keypoints_2d: person.flatMap((p) => (p.hidden ? [0, 0, 0] : [round(p.x), round(p.y), 1])),
    })),
    canvas_width: canvas.width,
    canvas_height: canvas.height,
  });
}
function refresh(note = null) {
  const n = people.length;
  message = note;
  status.textContent = message ? message() : used
    ? (n === 1 ? tr("Generate reads this pose (1 person), not the image.")
      : tr("Generate reads this pose ({n} people), not the image.", { n }))
    : tr("Generate reads the image, not this pose: move a joint, add a person or load a JSON to use it.");
  root.dataset.used = String(used);
  button("unuse").disabled = !used;
  button("remove").disabled = n === 0;
  button("add").disabled = n >= MAX_PEOPLE;
  button("hide").disabled = !selected;
  draw();
}
function send() {
  used = true;
  lastSent = props.value = json();
  refresh();
  trigger("input");
}
function say(text) {
  announce.textContent = text;
}
function describe() {
  if (!selected) return "";
  const p = people[selected[0]][selected[1]];
  const values = { n: selected[0] + 1, joint: tr(NAMES[selected[1]]), x: Math.round(p.x), y: Math.round(p.y) };
  return p.hidden ? tr("person {n}, {joint} (hidden) at {x}, {y}", values) : tr("person {n}, {joint} at {x}, {y}", values);
}
function select(k, j) {
  selected = k === null ? null : [k, j];
  say(describe());
  refresh();
}
function resize(width, height) {
  canvas.width = width;
  canvas.height = height;
  canvas.style.aspectRatio = `${width} / ${height}`;
}
function load(text) {  // a JSON in the A1111 editor's layout: pixels, or 0..1 when every value is within [-1, 1]
  const data = JSON.parse(text);
  const width = Number(data.canvas_width), height = Number(data.canvas_height);
  if (!Array.isArray(data.people) || !(width >= 1 && width <= 4096 && height >= 1 && height <= 4096)) {
    throw new PoseError(T("it needs a people list and canvas_width, canvas_height from 1 to 4096"));
  }
  if (data.people.length > MAX_PEOPLE) {
    throw new PoseError(T("at most {max} people; it has {n}"), { max: MAX_PEOPLE, n: data.people.length });
  }
  const loaded = data.people.map((person, k) => {
    const v = person && person.pose_keypoints_2d;
    if (!Array.isArray(v) || v.length !== 54 || !v.every(Number.isFinite)) {
      throw new PoseError(T("person {n} needs 18 keypoints as x, y, confidence (54 numbers)"), { n: k + 1 });
    }
    const [sx, sy] = v.every((n) => Math.abs(n) <= 1) ? [width, height] : [1, 1];
    return NAMES.map((_, j) => ({ x: v[3 * j] * sx, y: v[3 * j + 1] * sy, hidden: v[3 * j + 2] <= 0 }));
  }).filter((person) => person.some((p) => !p.hidden));
  resize(width, height);
  people = loaded;
  selected = null;
}
function at(e) {
  const r = canvas.getBoundingClientRect();
  return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height,
    (GRAB * canvas.width) / r.width];
}
function nearest(x, y, reach) {
  let best = null, distance = reach;
  people.forEach((person, k) => person.forEach((p, j) => {
    const d = Math.hypot(p.x - x, p.y - y);
    if (d <= distance) [best, distance] = [[k, j], d];
  }));
  return best;
}
function clamp(p) {
  p.x = Math.min(Math.max(p.x, 0), canvas.width - 1);
  p.y = Math.min(Math.max(p.y, 0), canvas.height - 1);
}

canvas.addEventListener("pointerdown", (e) => {
  if (e.pointerType === "mouse" && e.button !== 0) return;
  e.preventDefault();
  canvas.focus();
  const [x, y, reach] = at(e);
  const hit = nearest(x, y, reach);
  select(hit ? hit[0] : null, hit ? hit[1] : null);
  if (!hit) return;
  dragging = false;
  canvas.setPointerCapture(e.pointerId);
  const move = (ev) => {
    const [mx, my] = at(ev);
    const p = people[hit[0]][hit[1]];
    [p.x, p.y] = [mx, my];
    clamp(p);
    dragging = true;
    draw();
  };
  const up = () => {
    canvas.removeEventListener("pointermove", move);
    canvas.removeEventListener("pointerup", up);
    canvas.removeEventListener("pointercancel", up);
    if (dragging) {
      say(describe());
      send();
    }
    dragging = false;
  };
  canvas.addEventListener("pointermove", move);
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointercancel", up);
});
canvas.addEventListener("keydown", (e) => {
  const all = people.flatMap((person, k) => person.map((_, j) => [k, j]));
  if (e.key === "Tab" && all.length) {  // joint to joint, then out of the canvas at either end
    const i = selected ? all.findIndex(([k, j]) => k === selected[0] && j === selected[1]) : -1;
    const next = i + (e.shiftKey ? -1 : 1);
    if ((i === -1 && !e.shiftKey) || (next >= 0 && next < all.length && i !== -1)) {
      e.preventDefault();
      const [k, j] = all[i === -1 ? 0 : next];
      select(k, j);
    }
    return;
  }
  if (!selected) return;
  const p = people[selected[0]][selected[1]];
  const step = e.shiftKey ? 10 : 1;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (moves[e.key]) {
    e.preventDefault();
    p.x += moves[e.key][0];
    p.y += moves[e.key][1];
    clamp(p);
    say(describe());
    send();
  } else if (e.key === "h" || e.key === "H") {
    e.preventDefault();
    button("hide").click();
  } else if (e.key === "Delete" || e.key === "Backspace") {
    e.preventDefault();
    button("remove").click();
  } else if (e.key === "Escape") {
    select(null);
  }
});
button("hide").addEventListener("click", () => {
  if (!selected) return;
  const p = people[selected[0]][selected[1]];
  p.hidden = !p.hidden;
  say(describe());
  send();
});
button("add").addEventListener("click", () => {
  if (people.length >= MAX_PEOPLE) return;
  const n = people.length;
  people.push(n === 0 ? figure() : figure(((n % 4) - 1.5) * 0.22, 0.7));
  select(people.length - 1, 1);
  send();
});
button("remove").addEventListener("click", () => {
  if (people.length === 0) return;
  const k = selected ? selected[0] : people.length - 1;
  people.splice(k, 1);
  selected = null;
  say(tr("person {n} removed", { n: k + 1 }));
  send();
});
button("reset").addEventListener("click", () => {
  people = [figure()];
  selected = null;
  send();
});
button("unuse").addEventListener("click", () => {
  used = false;
  lastSent = props.value = "";
  refresh();
  trigger("input");
});
button("save").addEventListener("click", () => {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([json()], { type: "application/json" }));
  link.download = "pose.json";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
});
button("open").addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", async () => {
  const file = fileInput.files[0];
  fileInput.value = "";
  if (!file) return;
  try {
    if (file.size > Number(root.dataset.maxChars)) throw new PoseError(T("the file is too big for a pose"));
    load(await file.text());
    send();
  } catch (err) {
    refresh(() => tr("Could not open {file} as OpenPose JSON: {reason}.", { file: file.name, reason: reason(err) }));
  }
});
watch("value", () => {  // a pose from the server: a detected skeleton, a pasted JSON
  const value = props.value || "";
  if (value === lastSent) return;
  lastSent = value;
  if (!value) {
    used = false;
    refresh();
    return;
  }
  try {
    load(value);
    used = true;
    refresh();
  } catch (err) {
    used = false;
    refresh(() => tr("That pose could not be opened: {reason}. Generate reads the image.", { reason: reason(err) }));
  }
});

document.addEventListener("controlnet-demo-language", () => refresh(message));  // the page's language changed
people = [figure()];
refresh();
