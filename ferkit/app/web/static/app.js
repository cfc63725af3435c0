// The page of serve.py: photos and webcam frames go to this server's /api/faces, and each
// face comes back as a box, a label and seven probabilities (faces.csv's names), drawn here
// as elements over the picture. Nothing is fetched from anywhere but this server.
"use strict";

const NAMES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"];
const KEYS = NAMES.map((name) => name.toLowerCase());   // colours: var(--angry) ...
const LIVE_INTERVAL_MS = 200;   // at most 5 frames a second go to the server
const LIVE_WIDTH = 640;         // frames are sent at most this wide
const SMOOTHING = 0.35;         // weight of the newest frame in a face's running bars
const TRACK_TIMEOUT_MS = 1000;  // a face unseen this long is forgotten
const CHART_SPAN_MS = 30000;    // a tracked face's live chart shows its last 30 s
const CHART_SIZE = [240, 64];   // the chart's canvas, CSS pixels

const $ = (id) => document.getElementById(id);
const detector = $("detector");

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function colour(label) { return `var(--${KEYS[label]})`; }

function facesUrl(source, explain, stream) {
  const query = new URLSearchParams({ source });
  if (detector.value) query.set("detector", detector.value);
  if (explain) query.set("explain", "true");
  if (stream) query.set("stream", stream);
  return `api/faces?${query}`;
}

async function postPicture(blob, source, explain, stream) {
  const response = await fetch(facesUrl(source, explain, stream), {
    method: "POST", body: blob,
    headers: { "Content-Type": blob.type || "application/octet-stream" },
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

// --- drawing a face: its box and label over the picture, its bars in a card ----------------

function placeBox(box, face, width, height) {
  box.style.left = `${(100 * face.x) / width}%`;
  box.style.top = `${(100 * face.y) / height}%`;
  box.style.width = `${(100 * face.w) / width}%`;
  box.style.height = `${(100 * face.h) / height}%`;
  box.classList.toggle("low", face.y < 0.08 * height);  // label below a box at the top
}

function labelText(label, probs, specialist) {
  return `${NAMES[label]}${specialist ? "*" : ""} ${Math.round(100 * probs[label])}%`;
}

function faceBox(label, text) {
  const box = el("div", "face-box");
  box.style.setProperty("--c", colour(label));
  box.append(el("span", "face-label", text));
  return box;
}

function bars(probs, label) {
  const grid = el("div", "bars");
  probs.forEach((p, i) => {
    const track = el("span", "track");
    const fill = el("span", "fill");
    fill.style.display = "block";
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    fill.style.setProperty("--c", colour(i));
    track.append(fill);
    grid.append(el("span", i === label ? "top" : "", NAMES[i]), track,
                el("span", "", `${Math.round(100 * p)}%`));
  });
  return grid;
}

// The label's probabilities, faces.csv's p_angry..p_neutral.
function probsOf(face) { return KEYS.map((key) => face[`p_${key}`]); }

// --- photos -------------------------------------------------------------------------------

function showPhoto(file) {
  const card = el("div", "result");
  card.append(el("h2", "", file.name));
  const stage = el("div", "stage");
  const img = el("img");
  img.alt = file.name;
  img.src = URL.createObjectURL(file);
  const overlay = el("div", "overlay");
  stage.append(img, overlay);
  const list = el("div", "bar-list");
  const status = el("p", "hint", "Looking for faces...");
  card.append(stage, list, status);
  $("results").prepend(card);
  postPicture(file, "photo", false).then((answer) => {
    status.textContent = `${answer.faces.length} face(s) found by ${answer.detector} in ` +
      `${answer.width}x${answer.height}, ${answer.ms} ms`;
    answer.faces.forEach((face, i) => {
      const probs = probsOf(face);
      const text = labelText(face.label, probs, face.handed_over);
      const box = faceBox(face.label, text);
      placeBox(box, face, answer.width, answer.height);
      overlay.append(box);
      const faceCard = el("div", "face-card");
      faceCard.append(el("h3", "", `Face ${i + 1}: ${text}`), bars(probs, face.label));
      list.append(faceCard);
      const select = () => explainFace(file, answer, i, box, faceCard);
      box.addEventListener("click", select);
      faceCard.addEventListener("click", select);
    });
  }).catch((err) => {
    status.textContent = `Not read: ${err.message}`;
    status.className = "error";
  });
}

// Grad-CAM of one face: the photo is sent once more with explain=true (cached per photo).
const explained = new WeakMap();
async function explainFace(file, answer, i, box, faceCard) {
  for (const node of faceCard.parentNode.querySelectorAll(".selected")) node.classList.remove("selected");
  for (const node of box.parentNode.querySelectorAll(".selected")) node.classList.remove("selected");
  box.classList.add("selected");
  faceCard.classList.add("selected");
  if (faceCard.querySelector(".gradcam")) return;
  const slot = el("div", "gradcam", "Grad-CAM...");
  faceCard.append(slot);
  try {
    if (!explained.has(file)) explained.set(file, postPicture(file, "photo", true));
    const face = (await explained.get(file)).faces[i];
    slot.textContent = "";
    const img = el("img");
    img.src = face.gradcam;
    img.alt = `Grad-CAM of face ${i + 1}`;
    slot.append(img, el("span", "", `Where stage 1 looked for ${NAMES[face.label]} ` +
                        "(red: most).")); 
  } catch (err) {
    explained.delete(file);
    slot.textContent = `Grad-CAM not made: ${err.message}`;
  }
}

function takeFiles(files) {
  for (const file of files) showPhoto(file);
}

$("files").addEventListener("change", (event) => takeFiles(event.target.files));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  takeFiles(event.dataTransfer.files);
});

// --- webcam: frames a few times a second, a steady label per face ---------------------------

const live = { stream: null, timer: null, busy: false, tracks: [], done: [], name: null };

// Each face keeps the track the server gave it across this page's frames (its tracker,
// ferkit.tracking, sees them as one stream): its label is the server's smoothed label, its
// bars the running mean of its probabilities, and its history feeds its live chart.
function track(faces, now) {
  for (const face of faces) {
    const probs = probsOf(face);
    let t = live.tracks.find((known) => known.id === face.track);
    if (!t) {
      t = { id: face.track, probs, history: [] };
      live.tracks.push(t);
    }
    Object.assign(t, { x: face.x, y: face.y, w: face.w, h: face.h, seen: now,
                       label: face.smooth_label });
    t.probs = t.probs.map((p, i) => p + SMOOTHING * (probs[i] - p));
    t.history.push([now, probs]);
    while (t.history[0][0] < now - CHART_SPAN_MS) t.history.shift();
  }
  live.tracks = live.tracks.filter((t) => now - t.seen < TRACK_TIMEOUT_MS);
}

function drawLive(width, height) {
  const overlay = $("live-faces");
  const list = $("live-bars");
  overlay.replaceChildren();
  list.replaceChildren();
  for (const t of live.tracks) {
    const label = t.label;
    const text = labelText(label, t.probs, false);
    const box = faceBox(label, text);
    placeBox(box, t, width, height);
    overlay.append(box);
    const card = el("div", "face-card");
    card.append(el("h3", "", `Face ${t.id}: ${text}`), bars(t.probs, label),
                liveChart(t.history, performance.now()));
    list.append(card);
  }
}

// A tracked face's last CHART_SPAN_MS of probabilities: one line per class, the newest
// frame at the right edge, 0 at the bottom and 1 at the top.
function liveChart(history, now) {
  const canvas = el("canvas", "live-chart");
  const [width, height] = CHART_SIZE;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.title = "the last 30 s of this face's probabilities";
  canvas.dataset.points = String(history.length);
  const context = canvas.getContext("2d");
  context.scale(ratio, ratio);
  const styles = getComputedStyle(document.documentElement);
  const x = (t) => width - (width * (now - t)) / CHART_SPAN_MS;
  const y = (p) => height - 2 - (height - 4) * p;
  KEYS.forEach((key, i) => {
    context.strokeStyle = styles.getPropertyValue(`--${key}`).trim() || "#888";
    context.lineWidth = 1.5;
    context.beginPath();
    history.forEach(([t, probs], j) => {
      if (j === 0) context.moveTo(x(t), y(probs[i])); else context.lineTo(x(t), y(probs[i]));
    });
    context.stroke();
  });
  return canvas;
}

function frameBlob(video) {
  const scale = Math.min(1, LIVE_WIDTH / video.videoWidth);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8));
}

async function sendFrame() {
  const video = $("video");
  if (live.busy || !live.stream || video.videoWidth === 0) return;
  live.busy = true;
  try {
    const answer = await postPicture(await frameBlob(video), "live", false, live.name);
    const now = performance.now();
    track(answer.faces, now);
    if (live.stream) drawLive(answer.width, answer.height);
    live.done = live.done.filter((t) => now - t < 2000).concat([now]);
    const fps = live.done.length > 1
      ? (1000 * (live.done.length - 1)) / (now - live.done[0]) : 0;
    $("fps").textContent = `${fps.toFixed(1)} frames/s, ${answer.ms} ms a frame on the server`;
    $("camera-status").textContent = `${answer.faces.length} face(s) in the last frame ` +
      `(${answer.detector})`;
  } catch (err) {
    $("camera-status").textContent = `Frame not read: ${err.message}`;
  } finally {
    live.busy = false;
  }
}

async function startWebcam() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    $("camera-status").textContent = "This browser gives no webcam to this page (it needs the page opened " +
      "from localhost, or over HTTPS).";
    return;
  }
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (err) {
    $("camera-status").textContent = `No webcam: ${err.message}`;
    return;
  }
  live.name = `page-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;  // a new stream
  $("video").srcObject = live.stream;
  $("start").disabled = true;
  $("stop").disabled = false;
  live.timer = setInterval(sendFrame, LIVE_INTERVAL_MS);
}

function stopWebcam() {
  clearInterval(live.timer);
  if (live.stream) for (const t of live.stream.getTracks()) t.stop();
  live.stream = null;
  live.tracks = [];
  live.done = [];
  $("video").srcObject = null;
  $("live-faces").replaceChildren();
  $("live-bars").replaceChildren();
  $("fps").textContent = "";
  $("start").disabled = false;
  $("stop").disabled = true;
}

$("start").addEventListener("click", startWebcam);
$("stop").addEventListener("click", stopWebcam);

// --- tabs and what the server says about itself --------------------------------------------

function showTab(name) {
  $("photos").hidden = name !== "photos";
  $("webcam").hidden = name !== "webcam";
  $("tab-photos").classList.toggle("active", name === "photos");
  $("tab-webcam").classList.toggle("active", name === "webcam");
  if (name !== "webcam") stopWebcam();
}
$("tab-photos").addEventListener("click", () => showTab("photos"));
$("tab-webcam").addEventListener("click", () => showTab("webcam"));

fetch("api/health").then((r) => r.json()).then((health) => {
  const sources = health.sources;
  detector.options[0].textContent =
    `auto (photos ${sources.photo.detector}, webcam ${sources.live.detector})`;
  for (const option of detector.options) {
    if (option.value && !health.detectors.includes(option.value)) option.disabled = true;
  }
  $("about").textContent = `Runtime ${health.runtime}, ${health.cascade ? "two-stage cascade" :
    "stage 1 alone"}${health.tta ? " with TTA" : ""}. '*': the specialist chose the label; ` +
    "the percentage is the label's probability. API documentation: ";
  const docs = el("a", "", "/docs");
  docs.href = "docs";
  $("about").append(docs);
}).catch(() => { $("about").textContent = "The server does not answer."; });
