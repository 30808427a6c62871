// The evaluation page: "Pin" fills an answer's moment from where the player is.
const audio = document.getElementById("audio");

function clock(seconds) {
  const whole = Math.max(0, Math.round(seconds));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

document.querySelectorAll("button[data-pin]").forEach((button) => {
  button.addEventListener("click", () => {
    const input = document.getElementById(button.dataset.pin);
    if (input && audio) input.value = clock(audio.currentTime);
  });
});

// The draft saves itself a moment after each change (the same post as "Save draft").
const form = document.getElementById("evaluation-form");
const saved = document.getElementById("autosave");
let pending = 0;

async function autosave() {
  const body = new FormData(form);
  body.set("action", "save");
  try {
    // getAttribute: the buttons named "action" shadow form.action.
    const answer = await fetch(form.getAttribute("action"), { method: "POST", body, credentials: "same-origin" });
    saved.textContent = answer.ok ? `Draft saved at ${new Date().toISOString().slice(11, 19)} UTC` : "Not saved: press Save draft to see why";
  } catch {
    saved.textContent = "Not saved: the server did not answer";
  }
}

if (form && saved) {
  form.addEventListener("change", () => {
    clearTimeout(pending);
    saved.textContent = "Saving…";
    pending = setTimeout(autosave, 800);
  });
  // Marks the page as listening, so a change made before this script ran is not lost unnoticed.
  form.dataset.autosave = "on";
}
