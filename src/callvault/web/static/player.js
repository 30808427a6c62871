// The recording page's player: two waveform lanes (agent, customer) drawn from the server's
// peaks, the browser's <audio> element playing the Range-capable audio endpoint.
const player = document.getElementById("player");
const audio = document.getElementById("audio");
const lanes = [...player.querySelectorAll("canvas.lane")];
const playButton = document.getElementById("play");
const timeLabel = document.getElementById("time");
const speed = document.getElementById("speed");
const skipSilence = document.getElementById("skip-silence");
const commentAt = document.getElementById("comment-at");
const errorBox = document.getElementById("player-error");
const SPEEDS = ["0.75", "1", "1.25", "1.5", "2"];
const SILENCE_LEVEL = 40; // of 255 on the 60 dB scale: about -50 dBFS
const COLORS = [["#1f4e99", "#9db3d9"], ["#8a3b12", "#d9b29d"]];
const turns = [...document.querySelectorAll("#turns li.turn")];
let currentTurn = null;
let peaks = null; // {duration, bucket_seconds, lanes: [[0..255]]}
let frame = 0;

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
}

function duration() {
  if (Number.isFinite(audio.duration) && audio.duration > 0) return audio.duration;
  return (peaks && peaks.duration) || Number(player.dataset.duration) || 0;
}

function sizeCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  canvas.height = Math.max(1, Math.round(canvas.clientHeight * ratio));
}

function draw() {
  const total = duration();
  const now = audio.currentTime;
  lanes.forEach((canvas, index) => {
    const g = canvas.getContext("2d");
    const { width, height } = canvas;
    g.clearRect(0, 0, width, height);
    const values = peaks && peaks.lanes[Math.min(index, peaks.lanes.length - 1)];
    const playedX = total ? (now / total) * width : 0;
    if (values && values.length) {
      const step = width / values.length;
      for (let i = 0; i < values.length; i++) {
        const x = i * step;
        const h = Math.max(1, (values[i] / 255) * (height - 4));
        g.fillStyle = COLORS[index % 2][x < playedX ? 0 : 1];
        g.fillRect(x, (height - h) / 2, Math.max(1, step - 0.5), h);
      }
    }
    g.fillStyle = "#c1121f";
    g.fillRect(Math.min(width - 2, playedX), 0, 2, height);
    canvas.dataset.playhead = now.toFixed(3);
    canvas.setAttribute("aria-valuenow", now.toFixed(1));
    canvas.setAttribute("aria-valuetext", clock(now));
  });
  timeLabel.textContent = `${clock(now)} / ${clock(total)}`;
  markTurn(now);
}

// The transcript turn being heard is highlighted (and kept in view while playing).
function markTurn(now) {
  const turn = turns.find((li) => Number(li.dataset.start) <= now && now < Number(li.dataset.end) + 0.5) || null;
  if (turn === currentTurn) return;
  if (currentTurn) currentTurn.classList.remove("current");
  if (turn) {
    turn.classList.add("current");
    if (!audio.paused) turn.scrollIntoView({ block: "nearest" });
  }
  currentTurn = turn;
}

// A link to a moment of the call (search hits: /recordings/{id}#t=12.40) starts there.
function startFromLink() {
  const match = /^#t=(\d{1,7}(?:\.\d{1,3})?)$/.exec(window.location.hash);
  if (match) seek(Number(match[1]));
}

function isSilent(at) {
  if (!peaks || !peaks.lanes.length) return false;
  const i = Math.floor(at / peaks.bucket_seconds);
  return peaks.lanes.every((lane) => i < lane.length && lane[i] < SILENCE_LEVEL);
}

function nextSound(at) {
  const start = Math.floor(at / peaks.bucket_seconds);
  const length = peaks.lanes[0].length;
  for (let i = start; i < length; i++) {
    if (peaks.lanes.some((lane) => lane[i] >= SILENCE_LEVEL)) return i * peaks.bucket_seconds;
  }
  return duration();
}

function tick() {
  if (skipSilence.checked && !audio.paused && isSilent(audio.currentTime)) {
    audio.currentTime = Math.min(duration(), nextSound(audio.currentTime));
  }
  draw();
  frame = audio.paused ? 0 : requestAnimationFrame(tick);
}

function seek(seconds) {
  const total = duration();
  audio.currentTime = Math.max(0, total ? Math.min(total, seconds) : seconds);
  if (commentAt) commentAt.value = clock(audio.currentTime);
  draw();
}

async function togglePlay() {
  if (audio.paused) {
    try { await audio.play(); } catch (error) { showError(`The audio could not be played: ${error.message}`); }
  } else {
    audio.pause();
  }
}

function showError(message) { errorBox.textContent = message; errorBox.hidden = false; }

function changeSpeed(direction) {
  const index = Math.min(SPEEDS.length - 1, Math.max(0, SPEEDS.indexOf(speed.value) + direction));
  speed.value = SPEEDS[index];
  audio.playbackRate = Number(speed.value);
}

lanes.forEach((canvas) => {
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    seek(((event.clientX - box.left) / box.width) * duration());
  });
  canvas.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      event.stopPropagation();
      seek(audio.currentTime + (event.key === "ArrowLeft" ? -5 : 5));
    }
  });
});
document.querySelectorAll("[data-seek]").forEach((button) => {
  button.addEventListener("click", () => seek(Number(button.dataset.seek)));
});
playButton.addEventListener("click", togglePlay);
document.getElementById("back5").addEventListener("click", () => seek(audio.currentTime - 5));
document.getElementById("fwd5").addEventListener("click", () => seek(audio.currentTime + 5));
speed.addEventListener("change", () => { audio.playbackRate = Number(speed.value); });
audio.addEventListener("play", () => { playButton.textContent = "Pause"; frame = frame || requestAnimationFrame(tick); });
audio.addEventListener("pause", () => {
  playButton.textContent = "Play";
  if (commentAt) commentAt.value = clock(audio.currentTime);
  draw();
});
audio.addEventListener("timeupdate", () => { if (audio.paused) draw(); });
audio.addEventListener("loadedmetadata", draw);
audio.addEventListener("error", () => showError("The audio could not be loaded. Reload the page or ask an administrator."));
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLElement && target.closest("input, textarea, select")) return;
  if (target instanceof HTMLElement && target.closest("button, a") && (event.key === " " || event.key === "Enter")) return;
  if (event.key === " " || event.key === "k") { event.preventDefault(); togglePlay(); }
  else if (event.key === "ArrowLeft" || event.key === "j") seek(audio.currentTime - 5);
  else if (event.key === "ArrowRight" || event.key === "l") seek(audio.currentTime + 5);
  else if (event.key === "Home") seek(0);
  else if (event.key === "[") changeSpeed(-1);
  else if (event.key === "]") changeSpeed(1);
});
window.addEventListener("resize", () => { lanes.forEach(sizeCanvas); draw(); });

async function loadPeaks() {
  lanes.forEach(sizeCanvas);
  draw();
  const points = Math.min(4000, Math.max(200, lanes[0].width));
  const response = await fetch(`/recordings/${player.dataset.recording}/peaks?points=${points}`, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  if (!response.ok) { showError("The waveform could not be loaded; the audio still plays."); return; }
  peaks = await response.json();
  player.dataset.peaksLoaded = "true";
  draw();
}
loadPeaks();
startFromLink();
window.addEventListener("hashchange", startFromLink);
