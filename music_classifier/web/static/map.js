// The model page's track map (no inline script: the Content-Security-Policy allows only files from this
// server). The figure comes as JSON from /models/ID/map.json; plotly.js draws it; a click on a point plays
// its track in the page's <audio id="map-audio"> and names it, with a link to the track page.
(function () {
  "use strict";

  // Hover texts are escaped for Plotly's small HTML subset (&, <, > only); the "playing" line is text.
  function plainText(value) {
    return String(value).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function play(event) {
    var point = event && event.points && event.points[0];
    var custom = point && point.customdata;
    var trackId = custom ? custom[6] : null;  // customdata: artist, title, student, genre, heard, p, track id
    if (!Number.isInteger(trackId) || trackId <= 0) { return; }
    var audio = document.getElementById("map-audio");
    var link = document.getElementById("map-track");
    audio.setAttribute("src", "/audio/" + trackId);
    link.setAttribute("href", "/tracks/" + trackId);
    link.textContent = plainText(custom[0]) + " — " + plainText(custom[1]);
    document.getElementById("map-now").hidden = false;
    audio.play().catch(function () { /* the controls stay: a click on play starts it */ });
  }

  function draw(box, status, answer) {
    if (!answer.ok) {
      status.textContent = answer.body.error || "No map.";
      return null;
    }
    var map = answer.body;
    status.textContent = map.notes.join(" ");
    return window.Plotly.newPlot(box, map.figure.data, map.figure.layout, map.config).then(function (gd) {
      gd.on("plotly_click", play);
      box.setAttribute("data-ready", "true");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("model-map");
    var status = document.getElementById("map-status");
    if (!box || !status) { return; }
    if (!window.Plotly) { status.textContent = "No map: plotly.js did not load."; return; }
    fetch(box.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (answer) { return draw(box, status, answer); })
      .catch(function (err) { status.textContent = "No map: " + err; });
  });
})();
