// Live calls: the table follows the server's event stream (no reload); durations tick locally.
const table = document.querySelector("#live-calls tbody");
const none = document.getElementById("no-live");
const status = document.getElementById("live-status");
let calls = [];
let received = performance.now();

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
}

function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }

function lossCell(streams) {
  const td = document.createElement("td");
  td.className = "loss";
  streams.forEach((s, i) => {
    const span = document.createElement("span");
    span.dataset.stream = s.label;
    for (const key of ["received", "expected", "lost"]) span.dataset[key] = s[key] === null ? "" : String(s[key]);
    span.textContent = s.expected === null ? `${s.label}: not measured`
      : `${s.label}: ${s.lost} of ${s.expected} lost (${s.loss_percent ?? 0} %)`;
    if (i) td.append(document.createElement("br"));
    td.append(span);
  });
  return td;
}

function transports(states) {
  const entries = Object.entries(states || {});
  if (!entries.length) return [document.createTextNode("none")];
  return entries.flatMap(([name, state], i) => {
    const span = document.createElement("span");
    span.dataset.transport = name;
    span.textContent = `${name.toUpperCase()} ${state}`;
    return i ? [document.createTextNode("; "), span] : [span];
  });
}

function render() {
  const elapsed = (performance.now() - received) / 1000;
  table.replaceChildren(...calls.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.recording = c.id;
    const streams = c.streams.map((s) => s.label + (s.on_hold ? " (hold)" : "")).join(", ");
    const started = c.started_at ? c.started_at.replace("T", " ").replace("Z", " UTC").slice(0, 23) : "–";
    const duration = cell(clock(c.seconds + elapsed));
    duration.className = "num";
    tr.append(cell(c.agent || "–"), cell(c.customer || "–"), cell(c.direction || "–"), cell(started), duration, cell(streams), lossCell(c.streams));
    return tr;
  }));
  none.hidden = calls.length > 0;
  status.textContent = `${calls.length} call${calls.length === 1 ? "" : "s"} being recorded now.`;
}

const source = new EventSource("/live/events");
source.addEventListener("calls", (event) => { calls = JSON.parse(event.data); received = performance.now(); render(); });
source.addEventListener("health", (event) => {
  const health = JSON.parse(event.data);
  for (const dd of document.querySelectorAll("#health dd[data-key]")) {
    const value = health[dd.dataset.key];
    if (dd.dataset.key === "storage_used_bytes") dd.textContent = `${(value / 1048576).toFixed(1)} MB`;
    else if (dd.dataset.key === "disk_free_bytes") dd.textContent = `${(value / 1073741824).toFixed(1)} GB`;
    else if (dd.dataset.key === "sip_transports") dd.replaceChildren(...transports(value));
    else if (dd.dataset.key === "days_left") dd.textContent = value === null ? "no calls this week" : String(value);
    else dd.textContent = String(value);
  }
});
source.addEventListener("ended", () => { source.close(); document.getElementById("live-ended").hidden = false; });
setInterval(() => { if (calls.length) render(); }, 1000);
