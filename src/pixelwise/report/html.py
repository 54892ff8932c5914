"""The HTML of ``pixelwise report``: one page, every picture a ``data:`` URI, no script.

:func:`render_html` turns a :class:`pixelwise.report.collect.ReportData` into the page. The page
loads nothing: no script, no web font, no stylesheet or image from elsewhere (its CSS is
inline), so it looks the same offline, in a mail attachment or years later. Charts are
drawn with matplotlib's object API (no pyplot global state); label maps are coloured with
the run's palette, and resized with nearest neighbour only.

Example:
    >>> data_uri(b"\\x89PNG...", "image/png")[:22]
    'data:image/png;base64,'
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from pixelwise import __version__
from pixelwise.evaluation.result import how_predicted

#: Longest side of a gallery panel in the file; larger images are shrunk, smaller ones are
#: scaled up by the browser without smoothing.
PANEL_SIDE = 320

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       margin: 0 auto; max-width: 1180px; padding: 0 24px 48px; }
h1 { margin: 28px 0 4px; font-size: 26px; } h2 { margin: 36px 0 10px; font-size: 20px;
     border-bottom: 1px solid #d0d4da; padding-bottom: 4px; }
.sub { color: #555; margin: 0 0 12px; } nav a { margin-right: 14px; }
.note { background: #fff6d6; border-left: 4px solid #e0b000; padding: 8px 12px; margin: 8px 0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f3f5f7; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.key, .config .key { color: #444; white-space: nowrap; }
.config { columns: 3 300px; column-gap: 28px; } .config div { break-inside: avoid; padding: 2px 0;
          border-bottom: 1px solid #eef0f2; }
.value, code { font-family: ui-monospace, monospace; font-size: 13px; } .value { word-break: break-all; }
code { white-space: nowrap; } .headline { font-size: 17px; margin: 6px 0 10px; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #555; margin-right: 6px;
          vertical-align: -1px; }
img.chart { max-width: 100%; height: auto; } img.confusion { max-width: min(100%, 900px); }
.gallery { display: grid; grid-template-columns: repeat(3, minmax(0, 300px)); gap: 6px 10px;
           margin-bottom: 18px; }
.gallery h3 { grid-column: 1 / -1; margin: 14px 0 0; font-size: 15px; }
.gallery figure { margin: 0; } .gallery figcaption { color: #555; font-size: 13px; }
img.panel { width: 100%; height: auto; image-rendering: pixelated; border: 1px solid #ccc; }
.legend span { margin-right: 14px; white-space: nowrap; }
.fail { color: #b00020; font-weight: 600; } .pass { color: #137333; }
footer { margin-top: 40px; color: #777; font-size: 13px; }
"""

_SECTIONS = (("config", "Configuration"), ("curves", "Training curves"), ("metrics", "Metrics"),
             ("per-class", "Per-class IoU"), ("confusion", "Confusion matrix"),
             ("examples", "Worst and best images"), ("exports", "Exports"))


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...``: a picture the page carries inside itself."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def render_html(data) -> str:
    """The whole page for a :class:`pixelwise.report.collect.ReportData`, as text."""
    metrics = data.metrics
    title = f"pixelwise report: {data.run.name}"
    where = (f"{metrics.get('dataset') or data.config.get('dataset')} · split {data.split} · "
             f"checkpoint {metrics.get('checkpoint', 'best')}")
    nav = " ".join(f'<a href="#{key}">{name}</a>' for key, name in _SECTIONS)
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in data.notes)
    body = "\n".join([
        f"<h1>{_e(title)}</h1>", f'<p class="sub">{_e(where)}</p>', _headline(metrics),
        f"<nav>{nav}</nav>", notes,
        _section("config", _config_table(data.config)),
        _section("curves", _curves(data.curves_png)),
        _section("metrics", _metrics(data)),
        _section("per-class", _img(_iou_bar_chart(data), "per-class IoU bar chart")),
        _section("confusion", _img(data.confusion_png, "confusion matrix heat map", "confusion")
                 + "<p>Each row is a true class, split over the classes predicted for its "
                 "pixels (rows sum to 1; void pixels excluded).</p>"),
        _section("examples", _gallery(data)),
        _section("exports", _exports(data)),
    ])
    written = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    footer = (f"<footer>Written {written} by pixelwise {__version__} from {_e(data.run)} and "
              f"{_e(data.metrics_path.name)}. Everything on this page is inside this file.</footer>")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n"
            f"{footer}\n</body>\n</html>\n")


def _section(key: str, content: str) -> str:
    return f'<section id="{key}">\n<h2>{dict(_SECTIONS)[key]}</h2>\n{content}\n</section>'


def _config_table(config: dict) -> str:
    if not config:
        return "<p>The run folder has no config.json.</p>"
    items = "".join(
        f'<div><span class="key">{_e(key)}</span> <span class="value">'
        f"{_e(value if isinstance(value, str) else json.dumps(value))}</span></div>"
        for key, value in config.items())
    return f'<p>config.json: the resolved training options.</p><div class="config">{items}</div>'


def _curves(png: bytes | None) -> str:
    if png is None:
        return "<p>No curves: the run has no history.csv (no epoch finished).</p>"
    return _img(png, "training curves: loss, pixel accuracy and mean IoU per epoch")


def _metrics(data) -> str:
    m = data.metrics
    interval = m.get("mean_iou_interval")
    mean_note = "no interval (evaluated without bootstrap resamples)"
    if interval:
        mean_note = (f"{100 * interval['confidence']:g} % interval {_pct(interval['low'])} – "
                     f"{_pct(interval['high'])} % ({interval['resamples']} bootstrap resamples of "
                     f"the {interval['num_images']} images, seed {interval['seed']})")
    band = m.get("boundary_ratio")
    rows = [
        ("mean IoU", m.get("mean_iou"), mean_note),
        ("frequency-weighted IoU", m.get("frequency_weighted_iou"), "IoU weighted by each class's pixels"),
        ("boundary IoU", m.get("boundary_iou"),
         f"IoU within {100 * band:g} % of the image diagonal of the boundaries" if band else ""),
        ("mean Dice (F1)", m.get("mean_dice"), ""),
        ("pixel accuracy", m.get("pixel_accuracy"), ""),
        ("mean class accuracy", m.get("mean_class_accuracy"), "mean recall"),
    ]
    head = ('<table><tr><th>metric</th><th class="num">%</th><th>note</th></tr>'
            + "".join(f'<tr><td>{name}</td><td class="num">{_pct(value)}</td><td>{_e(note)}</td></tr>'
                      for name, value, note in rows) + "</table>")
    return (f"<p>{_e(_how_evaluated(data))}</p>" + head
            + "<p>Per class (IoU = TP / (TP + FP + FN); “–”: undefined, no pixel of the class "
            "in the labels or predictions its formula divides by):</p>" + _per_class_table(data))


def _how_evaluated(data) -> str:
    m = data.metrics
    where = ("native label resolution" if data.image_size is None
             else f"a fixed {data.image_size[0]}x{data.image_size[1]}")
    seconds = m.get("seconds_per_image")
    timing = f", {seconds:.3f} s per image" if seconds else ""
    how = how_predicted(data.predict_options).replace(", TTA ", ", test-time augmentation ")
    return f"{m.get('num_images')} images, metrics at {where}, {how}{timing}; void pixels excluded."


def _per_class_table(data) -> str:
    per_class = data.metrics.get("per_class", {})
    columns = (("iou", "IoU %"), ("boundary_iou", "boundary IoU %"), ("precision", "precision %"),
               ("recall", "recall %"), ("dice", "Dice %"))
    head = ("<tr><th>class</th>" + "".join(f'<th class="num">{t}</th>' for _, t in columns)
            + '<th class="num">label pixels</th><th class="num">predicted pixels</th></tr>')
    rows = []
    for i, name in enumerate(data.class_set.class_names):
        row = per_class.get(name, {})
        cells = "".join(f'<td class="num">{_pct(row.get(key))}</td>' for key, _ in columns)
        counts = "".join(f'<td class="num">{_count(row.get(k))}</td>'
                         for k in ("label_pixels", "predicted_pixels"))
        rows.append(f"<tr><td>{_swatch(data.class_set.palette[i])}{_e(name)}</td>{cells}{counts}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _iou_bar_chart(data) -> bytes:
    names = data.class_set.class_names
    per_class = data.metrics.get("per_class", {})
    iou = np.array([_nan(per_class.get(n, {}).get("iou")) for n in names]) * 100
    figure = Figure(figsize=(9, 0.32 * len(names) + 1.3), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colours = [np.array(c) / 255 for c in data.class_set.palette]
    axes.barh(range(len(names)), np.nan_to_num(iou), color=colours, edgecolor="#333", linewidth=0.6)
    for y, value in enumerate(iou):
        text = "absent" if math.isnan(value) else f"{value:.1f}"
        axes.text((0 if math.isnan(value) else value) + 1, y, text, va="center", fontsize=8)
    mean = _nan(data.metrics.get("mean_iou")) * 100
    if not math.isnan(mean):
        axes.axvline(mean, color="#b00020", linestyle="--", linewidth=1,
                     label=f"mean IoU {mean:.1f} %")
        axes.legend(loc="lower right", fontsize=8)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 105)
    axes.set_xlabel("IoU (%)")
    axes.set_title(f"IoU per class on {data.split} (bar colour: the class's palette colour)", fontsize=10)
    axes.grid(True, axis="x", alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _gallery(data) -> str:
    k = len(data.worst)
    if not data.worst:
        return "<p>No image of the split has a mean IoU (every pixel is void).</p>"
    intro = ("<p>Each row: the image, its true labels, the prediction, and the mean IoU of that "
             "image alone (over the classes in its labels or prediction; void excluded), as "
             "evaluated.</p>")
    if data.best:
        heading = f"{_the_images(k)} with the lowest mean IoU" + (", worst first" if k > 1 else "")
    else:
        heading = "The split's only image" if k == 1 else f"All {k} images of the split, worst first"
    parts = [intro, _legend(data), f"<h3>{heading}</h3>", _rows(data, data.worst, "worst")]
    if data.best:
        best_first = ", best first" if len(data.best) > 1 else ""
        parts += [f"<h3>{_the_images(len(data.best))} with the highest mean IoU{best_first}</h3>",
                  _rows(data, data.best, "best")]
    return "\n".join(parts)


def _rows(data, images, kind: str) -> str:
    out = []
    for rank, shown in enumerate(images, 1):
        name = f" · {shown.filename}" if shown.filename else ""
        caption = (f"{kind} {rank}: mean IoU {_pct(shown.mean_iou)} % · {data.split} example "
                   f"{shown.index}{name}")
        out.append(f'<div class="gallery"><h3>{_e(caption)}</h3>'
                   + _panel(shown.image, "image", photo=True)
                   + _panel(data.class_set.colorize(shown.label), "truth")
                   + _panel(data.class_set.colorize(shown.predicted), "prediction") + "</div>")
    return "\n".join(out)


def _panel(array: np.ndarray, caption: str, photo: bool = False) -> str:
    picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array[..., :3])
    scale = PANEL_SIDE / max(picture.size)
    if scale < 1:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.BILINEAR if photo else Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    uri = data_uri(buffer.getvalue(), "image/png")
    return (f'<figure><img class="panel" src="{uri}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _legend(data) -> str:
    present = set()
    for shown in data.worst + data.best:
        present.update(np.unique(shown.label).tolist())
        present.update(np.unique(shown.predicted).tolist())
    class_set = data.class_set
    items = [f"<span>{_swatch(class_set.palette[i])}{_e(n)}</span>"
             for i, n in enumerate(class_set.class_names) if i in present]
    if class_set.ignore_label in present:
        items.append(f"<span>{_swatch(class_set.void_color)}void (not scored)</span>")
    return f'<p class="legend">Colours: {"".join(items)}</p>'


def _exports(data) -> str:
    searched = ", ".join(str(p) for p in data.exports_searched)
    if not data.parity:
        return (f"<p>No export parity reports found (searched {_e(searched)} for parity.json). "
                "An export writes one next to its artefact: <code>pixelwise export --run RUN "
                "--out RUN/exports/NAME</code>, or pass <code>--exports DIR</code>.</p>")
    flat = [_flatten(content) for _, content in data.parity]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    head = "<tr><th></th>" + "".join(f"<th>{_e(_short(path, data.run))}</th>"
                                     for path, _ in data.parity) + "</tr>"
    rows = "".join(f'<tr><td class="key">{_e(key.replace("_", " "))}</td>'
                   + "".join(_parity_cell(f.get(key)) for f in flat) + "</tr>" for key in keys)
    return (f"<p>Parity of each exported artefact with the Keras model (searched {_e(searched)}).</p>"
            f"<table>{head}{rows}</table>")


def _flatten(content: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in content.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key} · "))
        else:
            flat[prefix + key] = value
    return flat


def _parity_cell(value) -> str:
    if isinstance(value, bool):
        return f'<td class="{"pass" if value else "fail"}">{"yes" if value else "no"}</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    if value is None:
        return "<td>–</td>"
    return f"<td>{_e(value if isinstance(value, str) else json.dumps(value))}</td>"


def _short(path, run) -> str:
    try:
        return str(path.parent.relative_to(run))
    except ValueError:
        return str(path.parent)


def _img(png: bytes, alt: str, extra_class: str = "") -> str:
    return f'<img class="chart {extra_class}" src="{data_uri(png, "image/png")}" alt="{_e(alt)}">'


def _swatch(rgb) -> str:
    return f'<span class="swatch" style="background: rgb({rgb[0]}, {rgb[1]}, {rgb[2]})"></span>'


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def _pct(value) -> str:
    return "–" if value is None or math.isnan(float(value)) else f"{100 * float(value):.2f}"


def _the_images(count: int) -> str:
    return "The image" if count == 1 else f"The {count} images"


def _headline(m: dict) -> str:
    interval = m.get("mean_iou_interval")
    spread = (f" ({100 * interval['confidence']:g} % interval {_pct(interval['low'])} – "
              f"{_pct(interval['high'])} %)" if interval else "")
    return (f'<p class="headline">mean IoU <b>{_pct(m.get("mean_iou"))} %</b>{spread} on '
            f"{_e(m.get('num_images'))} images · pixel accuracy {_pct(m.get('pixel_accuracy'))} %</p>")


def _count(value) -> str:
    return "–" if value is None else f"{int(value):,}"


def _e(text) -> str:
    return html.escape(str(text))


__all__ = ["PANEL_SIDE", "data_uri", "render_html"]
