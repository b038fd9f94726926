"""plotly.js for the page, served from the installed ``plotly`` Python package (no CDN, no copy in the repo).

The script is the package's own ``package_data/plotly.min.js``; its address carries the plotly.js version
(``/vendor/plotly-4.1.1.min.js``), so a browser may cache it for good and an upgrade changes the address.
Compressed once (gzip) on first use and kept in memory: ~4.7 MB become ~1.4 MB on the wire.

Strict CSP: plotly.js draws with SVG and sets styles through the CSSOM (allowed by ``style-src 'self'``),
except for one sheet of global rules it writes into an inline ``<style>`` at load, which the page's CSP
refuses. plotly.js skips that step when the page already has an element ``#plotly.js-style-global`` of
class ``no-inline-styles`` (plotly.js PR #7109), so the page links those same rules as a stylesheet from
this server: :func:`plotly_css` reads them out of the installed plotly.min.js (the ``"X ...": "..."``
table of its ``build/plotcss`` module), so they always match the script. The bundled maplibre (map traces,
which the page does not draw) injects its own ``<style>`` unless an element with a fixed id exists:
:func:`injected_style_ids` finds those ids and the page carries an empty ``<template>`` of each. The one
style *attribute* plotly.js writes is for ``<b>`` in hover text; the page's figure has none
(:mod:`.model_map`). No CSP directive is relaxed.
"""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources
from pathlib import Path

from music_classifier.web.compressed import Asset, make_asset

# The selector placeholders of plotly.js's build/plotcss module and what it replaces them with.
_PLOT = ".js-plotly-plot .plotly"
_NOTIFIER = ".plotly-notifier"
_TABLE_START = re.compile(r'=\{"X,X div":')
_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\''
# A bundled library's self-injected stylesheet, skipped when an element of that id already exists.
_GUARDED_STYLE = re.compile(r'getElementById\("([A-Za-z0-9_-]{1,100})"\)\)\{var [A-Za-z_$][\w$]*='
                           r'document\.createElement\("style"\)')
_KEY = rf"{_STRING}|[A-Za-z_$][\w$]*"  # a quoted key, or a bare one (plotly.js writes Y:'...')
_PAIR = re.compile(rf"\s*({_KEY})\s*:\s*({_STRING})\s*([,}}])")


def plotly_js_path() -> Path | None:
    """The installed plotly.min.js, or None when the ``plotly`` package has none."""
    try:
        path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def plotly_js_version(script_head: bytes) -> str:
    """The version in the banner comment of plotly.min.js (``* plotly.js v4.1.1``), else "unknown"."""
    match = re.search(rb"plotly\.js v(\d+\.\d+\.\d+[\w.-]*)", script_head)
    return match.group(1).decode() if match else "unknown"


def _js_string(literal: str) -> str:
    # The table holds plain CSS text; a backslash escape is kept as CSS would read it (e.g. "\\2022").
    body = literal[1:-1] if literal[:1] in "\"'" else literal
    return re.sub(r"\\(.)", lambda m: m.group(1) if m.group(1) in "\"'" else "\\" + m.group(1), body)


def plotly_css(script: str) -> str | None:
    """The global CSS rules plotly.js would inject at load, read from its minified source; None if the
    table is not found (a plotly.js that changed its build: the page then shows the map without them)."""
    start = _TABLE_START.search(script)
    if start is None:
        return None
    pos, rules = start.start() + 2, []  # the first key, past "={"
    while True:
        match = _PAIR.match(script, pos)
        if match is None:
            return None
        selector, rule = _js_string(match.group(1)), _js_string(match.group(2))
        if "{" in rule or "}" in rule or "<" in selector + rule:
            return None  # not the plain rule table we expect
        full = re.sub(r"^,", " ,", selector).replace("X", _PLOT).replace("Y", _NOTIFIER)
        rules.append(f"{full}{{{rule}}}")
        pos = match.end()
        if match.group(3) == "}":
            break
    return "\n".join(rules) + "\n"


def injected_style_ids(script: str) -> list[str]:
    """The ids whose presence stops a bundled library from injecting its own ``<style>`` (maplibre's)."""
    return sorted(set(_GUARDED_STYLE.findall(script)))


class PlotlyAssets:
    """plotly.js and its CSS, read and compressed on first use (the server starts without reading 4.7 MB)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else plotly_js_path()

    @cached_property
    def version(self) -> str | None:
        if self.path is None:
            return None
        with open(self.path, "rb") as fh:
            return plotly_js_version(fh.read(512))

    @property
    def script_url(self) -> str | None:
        return f"/vendor/plotly-{self.version}.min.js" if self.version else None

    @property
    def css_url(self) -> str | None:
        return f"/vendor/plotly-{self.version}.css" if self.version and self.css is not None else None

    @cached_property
    def script(self) -> Asset | None:
        return make_asset(self.path.read_bytes(), "text/javascript; charset=utf-8") if self.path else None

    @cached_property
    def _source(self) -> str:
        return self.path.read_text(encoding="utf-8") if self.path else ""

    @cached_property
    def css(self) -> Asset | None:
        text = plotly_css(self._source) if self.path else None
        return make_asset(text.encode(), "text/css; charset=utf-8") if text is not None else None

    @cached_property
    def skip_style_ids(self) -> list[str]:
        """Ids of the empty elements the page carries so plotly.js's bundle injects no stylesheet of its own."""
        return injected_style_ids(self._source)
