"""The HTML report with ``<script>`` in every string it shows: escaped, and no script runs.

Class names, file names, the run's folder name, config keys and values, the split, notes
and parity reports all come from files a user (or an attacker) wrote. The page is
rendered from a :class:`pixelwise.report.collect.ReportData` holding them, parsed for elements and
event-handler attributes, and loaded in headless Chromium (Debian's, installed by
.ci/run), whose DOM after loading must show that no payload ran.
"""

from __future__ import annotations

import html
import html.parser
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hostile_cases import FUZZ, tried

CHROMIUM = shutil.which("chromium")
#: Each payload, if it ran, would set the title to PWNED and mark the <html> element.
RUN = "document.title='PWNED';document.documentElement.setAttribute('data-pwned','1')"
PAYLOADS = (f"<script>{RUN}</script>", f'<img src=x onerror="{RUN}">', f"\"><svg onload=\"{RUN}\">",
            f"'><iframe srcdoc='<script>parent.{RUN}</script>'>", f"</title><script>{RUN}</script>",
            f"javascript:{RUN}", f"<style>*{{display:none}}</style><a href=# onclick=\"{RUN}\">")


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def hostile_report_data(names: list[str], text: str):
    """A ReportData whose every free-text field carries ``text`` and classes are ``names``."""
    from pixelwise.class_sets import ClassSet, voc_palette
    from pixelwise.inference.options import PredictOptions
    from pixelwise.report.collect import ReportData, ShownImage

    k = len(names)
    class_set = ClassSet(name=text, class_names=tuple(names), palette=tuple(voc_palette(k)))
    label = np.arange(16).reshape(4, 4) % k
    shown = ShownImage(index=0, filename=f"{text}.png", mean_iou=0.5,
                       image=np.zeros((4, 4, 3), np.uint8), label=label, predicted=label[::-1])
    run = Path("/runs") / text.replace("/", "_")
    metrics = {"dataset": text, "checkpoint": text, "num_images": text, "mean_iou": 0.5,
               "per_class": {n: {"iou": 0.5, "label_pixels": 3} for n in names}}
    return ReportData(
        run=run, config={text: text, "model_args": {text: [text]}}, split=text, metrics=metrics,
        metrics_path=run / f"eval-{text.replace('/', '_')}.json", image_size=None,
        predict_options=PredictOptions(tile=64, tta="flip"),
        confusion=np.eye(k, dtype=np.int64), confusion_png=_png(), class_set=class_set,
        curves_png=None, worst=[shown], best=[shown],
        parity=[(run / "exports" / "parity.json", {text: text, "ok": True, "nested": {text: 1.5}})],
        exports_searched=[run / "exports"], notes=[text])


class _Elements(html.parser.HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def check_page_is_inert(page: str, texts) -> None:
    """No script, frame or event handler, only the page's own links, pictures and style;
    every hostile text shows escaped."""
    parser = _Elements()
    parser.feed(page)
    tags = [tag for tag, _ in parser.tags]
    assert not set(tags) & {"script", "iframe", "frame", "svg", "object", "embed"}, set(tags)
    assert tags.count("style") == 1
    assert all(attrs["href"].startswith("#") for tag, attrs in parser.tags if tag == "a")
    assert all(attrs["src"].startswith("data:image/png;base64,")
               for tag, attrs in parser.tags if tag == "img")
    handlers = [(tag, name) for tag, attrs in parser.tags for name in attrs if name.startswith("on")]
    assert not handlers, handlers
    for text in texts:
        assert html.escape(text) in page, text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_text_field_is_escaped(payload):
    from pixelwise.report.html import render_html

    tried("report: <script> in names and files (hand-written)")
    names = ["background", payload, f"{payload}2"]
    page = render_html(hostile_report_data(names, payload))
    check_page_is_inert(page, names)


@settings(FUZZ, max_examples=25)
@given(names=st.lists(st.text(alphabet=st.sampled_from('<>&"\'/=$ ascriptonerr\\;`'), min_size=1,
                              max_size=14), min_size=1, max_size=4, unique=True),
       text=st.text(alphabet=st.sampled_from('<>&"\'/=$ ascriptonerr\\;`'), min_size=1, max_size=20))
@pytest.mark.slow  # ~5 s: generated reports
def test_generated_names_are_escaped(names, text):
    from pixelwise.report.html import render_html

    tried("report: generated names and files")
    try:
        page = render_html(hostile_report_data(names, text))
    except ValueError:
        return  # a class set that cannot be (e.g. blank names); one clear error
    check_page_is_inert(page, names + [text])


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed; .ci/run installs "
                    "it (apt-get install --no-install-recommends chromium)")
def test_no_payload_runs_in_headless_chromium(tmp_path):
    from pixelwise.report.html import render_html

    tried("report: pages loaded in Chromium")
    page = tmp_path / "report.html"  # every payload at once: one browser start
    page.write_text(render_html(hostile_report_data(["background", *PAYLOADS], "".join(PAYLOADS))))
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.resolve().as_uri()]
    loaded = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    dom = loaded.stdout
    assert "<h2>Metrics</h2>" in dom  # the page did load
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert title != "PWNED" and title.startswith("pixelwise report"), title
    assert "data-pwned" not in re.search(r"<html[^>]*>", dom).group(0)
