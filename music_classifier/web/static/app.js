// The page's own script (no inline scripts: the Content-Security-Policy allows only files from this server).
// Play buttons share one <audio id="player">; the audit queue has keyboard shortcuts for a fast pass
// (play, next, previous, keep the sheet's genre, relabel) and remembers who decides in localStorage.
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

  // Settling a suspect: the row's form goes by htmx (the server answers with the settled row, which
  // replaces it); the next suspect in the list then becomes the current one.
  function decide(row, action) {
    var form = row && row.querySelector("form.decide");
    if (!form) { return; }
    var button = form.querySelector("button[name=action][value=" + action + "]");
    settling = suspects().indexOf(row);
    button.click();  // a click, not requestSubmit(button): htmx sends the value of the button last clicked
  }

  var settling = -1;
  var DECIDER_KEY = "music-classifier.decided-by";

  function decider() {
    try { return window.localStorage.getItem(DECIDER_KEY) || ""; } catch (e) { return ""; }
  }

  function fillDecider() {
    var name = decider();
    document.querySelectorAll("input.decided-by").forEach(function (input) { input.value = name; });
  }

  function leaveField(target) {
    target.blur();
    var row = current();
    if (row) { row.focus(); }
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") {
      var form = event.target.closest("#queue form.decide");
      if (form && event.key === "Escape") { event.preventDefault(); leaveField(event.target); }
      // Enter in the menu relabels to the genre chosen; in the note it does nothing (it would "keep").
      if (form && event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        if (tag === "select") { decide(event.target.closest("tr.suspect"), "set"); }
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
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
    } else if (event.key === "s" || event.key === "a") {
      var chosen = current();
      if (chosen) { event.preventDefault(); decide(chosen, event.key === "s" ? "keep" : "set"); }
    } else if (event.key === "r" || event.key === "n") {
      var at = current();
      var field = at && at.querySelector(event.key === "r" ? "select[name=genre]" : "input[name=note]");
      if (field) { event.preventDefault(); field.focus(); }
    }
  });

  document.addEventListener("htmx:afterSwap", function () {
    if (settling < 0) { return; }
    var rows = suspects();
    var next = rows[Math.min(settling, rows.length - 1)];
    settling = -1;
    var audio = player();
    if (audio && !audio.paused) { audio.pause(); markPlaying(null); }
    if (next) { select(next, false); }
    var status = document.getElementById("status");
    if (status) { status.textContent = ""; }
  });

  document.addEventListener("htmx:responseError", function (event) {
    settling = -1;
    var status = document.getElementById("status");
    if (status) { status.textContent = event.detail.xhr.responseText; }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var name = document.getElementById("decider");
    if (name) {
      name.value = decider();
      name.addEventListener("input", function () {
        try { window.localStorage.setItem(DECIDER_KEY, name.value.trim()); } catch (e) { /* private mode */ }
        fillDecider();
      });
    }
    fillDecider();
    var audio = player();
    if (audio) { audio.addEventListener("ended", function () { markPlaying(null); }); }
  });
})();
