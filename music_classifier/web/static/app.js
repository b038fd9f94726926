// The page's own script (no inline scripts: the Content-Security-Policy allows only files from this server).
// Play buttons share one <audio id="player">; the audit queue has keyboard shortcuts for a fast pass.
(function () {
  "use strict";

  function player() { return document.getElementById("player"); }

  function markPlaying(button) {
    document.querySelectorAll("button.play.playing").forEach(function (b) {
      if (b !== button) { b.classList.remove("playing"); b.textContent = "▶"; }
    });
    if (button) { button.classList.add("playing"); button.textContent = "❚❚"; }
  }

  function toggle(button) {
    var audio = player();
    var src = button.getAttribute("data-src");
    if (audio.getAttribute("src") === src && !audio.paused) {
      audio.pause();
      markPlaying(null);
      return;
    }
    if (audio.getAttribute("src") !== src) { audio.setAttribute("src", src); }
    audio.play().then(function () { markPlaying(button); }, function () { markPlaying(null); });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.play");
    if (button) { event.preventDefault(); toggle(button); }
  });

  function suspects() { return Array.prototype.slice.call(document.querySelectorAll("#queue tr.suspect")); }

  function current() { return document.querySelector("#queue tr.suspect.current"); }

  function select(row, play) {
    suspects().forEach(function (r) { r.classList.remove("current"); });
    if (!row) { return; }
    row.classList.add("current");
    row.focus();
    if (play) { toggle(row.querySelector("button.play")); }
  }

  function move(step) {
    var rows = suspects();
    if (!rows.length) { return; }
    var at = rows.indexOf(current());
    var next = rows[Math.min(Math.max(at + step, 0), rows.length - 1)];
    if (at < 0) { next = rows[0]; }
    select(next, true);
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var trackAudio = document.getElementById("track-audio");
    if (event.key === " ") {
      event.preventDefault();
      if (trackAudio) {
        if (trackAudio.paused) { trackAudio.play(); } else { trackAudio.pause(); }
        return;
      }
      var row = current() || suspects()[0];
      if (row) { select(row, false); toggle(row.querySelector("button.play")); }
    } else if (event.key === "j" || event.key === "ArrowDown") {
      if (suspects().length) { event.preventDefault(); move(1); }
    } else if (event.key === "k" || event.key === "ArrowUp") {
      if (suspects().length) { event.preventDefault(); move(-1); }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var audio = player();
    if (audio) { audio.addEventListener("ended", function () { markPlaying(null); }); }
  });
})();
