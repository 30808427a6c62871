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
