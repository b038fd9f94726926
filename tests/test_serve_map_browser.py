"""The model page's map in a real browser (Playwright on the system's Chromium, as tests/test_serve_browser.py):
plotly.js and the figure load from this server under the page's strict Content-Security-Policy (no
violation, no console error), and a real mouse click on a point, found in pixels through plotly's own axes,
plays that point's track in the page's audio element and names it with a link to its track page."""

from __future__ import annotations

import html

from test_serve_browser import _screenshot, page, server  # noqa: F401 - the fixtures

# Where each point is on the page, through the graph div's axes (the same mapping plotly draws with), and
# how far its nearest other point is: the test clicks the most isolated one, so the click is unambiguous.
POINTS_JS = """() => {
  const gd = document.getElementById('model-map'), fl = gd._fullLayout;
  const box = gd.getBoundingClientRect(), out = [];
  // _fullData: the traces as plotly decoded them (the JSON sends coordinates as typed arrays, base64)
  gd._fullData.forEach((trace, t) => Array.from(trace.x).forEach((x, i) => out.push({
    trace: t, index: i, track: trace.customdata[i][6], artist: trace.customdata[i][0],
    title: trace.customdata[i][1],
    px: box.left + fl.xaxis._offset + fl.xaxis.d2p(x), py: box.top + fl.yaxis._offset + fl.yaxis.d2p(trace.y[i])})));
  out.forEach(p => { p.gap = Math.min(...out.filter(q => q !== p).map(q => Math.hypot(q.px - p.px, q.py - p.py))); });
  return out;
}"""


def test_clicking_a_point_plays_its_track(server, page, tmp_path):  # noqa: F811
    base, served = server
    page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp"
                         ".push(`${e.violatedDirective} ${e.sourceFile}:${e.lineNumber}:${e.columnNumber}`));")
    answers = []
    page.on("response", lambda r: answers.append((r.url.replace(base, ""), r.status)))
    page.goto(f"{base}/models/{served.model_id}")
    page.wait_for_selector("#model-map[data-ready='true']")
    points = page.evaluate(POINTS_JS)
    assert {p["track"] for p in points} == {t for ids in served.ids.values() for t in ids}
    assert page.locator("#model-map g.trace.scatter path.point").count() == len(points)
    target = max(points, key=lambda p: p["gap"])
    assert target["gap"] > 6  # pixels: the point under the mouse is this one alone

    page.mouse.move(target["px"], target["py"])
    page.wait_for_selector("#model-map .hoverlayer .hovertext")  # plotly's hover: the click's own event path
    page.mouse.click(target["px"], target["py"])
    audio = "document.getElementById('map-audio')"
    page.wait_for_function(f"() => {audio}.currentTime > 0.3")
    assert page.evaluate(f"{audio}.getAttribute('src')") == f"/audio/{target['track']}"
    assert not page.evaluate(f"{audio}.paused")
    link = page.locator("#map-track")
    assert link.get_attribute("href") == f"/tracks/{target['track']}"
    assert link.inner_text() == f"{html.unescape(target['artist'])} — {html.unescape(target['title'])}"
    _screenshot(page, tmp_path, "serve-map.png")

    # Everything came from this server: the page, plotly.js and its stylesheet, the figure, the audio.
    paths = [p for p, _ in answers]
    assert any(p.startswith("/vendor/plotly-") and p.endswith(".min.js") for p in paths)
    assert any(p.startswith("/vendor/plotly-") and p.endswith(".css") for p in paths)
    assert (f"/models/{served.model_id}/map.json", 200) in answers
    assert all(not p.startswith("http") for p in paths), paths
    assert page.evaluate("window.__csp") == []
    assert page.evaluate("document.querySelectorAll('style').length") == 0  # plotly.js wrote no inline sheet
    assert not page.console_errors, page.console_errors
