"""Render the JSON results in ``benchmarks/results/`` as the Markdown tables of BENCHMARKS.md.

Usage::

    python benchmarks/report.py            # full results
    python benchmarks/report.py --quick    # the *.quick.json smoke results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str, quick: bool):
    path = RESULTS / f"{name}{'.quick' if quick else ''}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _when(data) -> str:
    machine = data["machine"]
    load = machine["load_average_at_start"][0], data.get("load_average_at_end", ["?"])[0]
    return (f"_Measured {machine['date_utc']}, load average {load[0]} → {load[1]} "
            f"on {machine['nproc']} cores. Command: `python {data['command']}`_")


def dataset_build(data) -> list[str]:
    label = data["label_conversion"]
    lines = [_when(data), "", f"Labels: {label['labels']}; {label['labels_per_repeat']} per repeat, "
             f"pixels disagreeing with the chapter outside void: {label['pixels_disagreeing_outside_void']}.",
             "", "| label conversion (PNG bytes → ids) | ms / label | vs chapter |", "|---|---:|---:|",
             f"| chapter: decode RGB + 22 `tf.Variable` passes | {label['chapter_tf_variable_loop_ms_per_label']:.1f} | 1× |",
             f"| pixelwise `decode_label`, palette PNG (VOC's format) | {label['pixelwise_palette_png_ms_per_label']:.2f} | **{label['speedup_palette_png']:.0f}×** |",
             f"| pixelwise `decode_label`, RGB PNG (colour lookup) | {label['pixelwise_rgb_png_ms_per_label']:.2f} | **{label['speedup_rgb_png']:.1f}×** |"]
    build = data.get("full_build", {})
    if "examples_per_s" in build:
        lines += ["", f"Full `download_and_prepare` of `voc2007_semantic` from a manual dir "
                  f"({build['archive']['source']}, {build['archive']['examples']}, "
                  f"{build['archive']['tar_mib']} MiB of tars): {build['examples_built']} examples in "
                  f"{build['build_s']['median_s']:.1f} s (median of {build['build_s']['repeats']}) = "
                  f"**{build['examples_per_s']:.1f} examples/s**."]
    elif build:
        lines += ["", f"Full build: not measured ({build.get('not_measured')})."]
    return lines


def training(data) -> list[str]:
    lines = [_when(data), ""]
    for group, figures in data["groups"].items():
        if "variants" not in figures:
            lines += [f"{group}: not measured ({figures.get('not_measured')})", ""]
            continue
        peak = figures["matmul_peak_gflops"]
        lines += [f"**{group}** — matmul peak in the same run ({peak['n']}², interleaved): "
                  f"fp32 {peak['float32']:.1f} GFLOP/s, bf16 {peak['bfloat16']:.1f} GFLOP/s", ""]
        if any("inference_images_per_s" in v for v in figures["variants"].values()):
            lines += training_and_inference(figures) + [""]
            continue
        lines += ["| variant | batch | step s (median) | images/s | fwd GFLOP/img | achieved GFLOP/s | of matmul peak |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, v in figures["variants"].items():
            lines.append(
                f"| {name} | {v['batch_size']} | {v['step_s']['median_s']:.2f} "
                f"({v['step_s']['repeats']}×) | {v['images_per_s']:.2f} | "
                f"{v['forward_gflops_per_image']:.2f} | {v['achieved_gflops']:.1f} | "
                f"**{100 * v['fraction_of_matmul_peak']:.0f} %** |")
        if figures.get("ratios"):
            lines += ["", "Ratios (same run): " + "; ".join(
                f"{k.split(':')[1]} = **{v:.2f}×**" for k, v in figures["ratios"].items())]
        lines.append("")
    return lines


def training_and_inference(figures) -> list[str]:
    """One row per model: size, cost, training and inference throughput, share of the peak."""
    reference = figures.get("reference")
    lines = ["| model | encoder | params M | fwd GFLOP/img | XLA | train images/s | train GFLOP/s "
             "| train of peak | infer images/s | infer GFLOP/s | infer of peak | train / infer "
             f"vs {reference or 'reference'} |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, v in figures["variants"].items():
        model = v.get("model", name) + (" (reference)" if name == reference else "")
        versus = (f"{v['images_per_s_over_reference']:.2f}× / "
                  f"{v['inference_images_per_s_over_reference']:.2f}×"
                  if "inference_images_per_s_over_reference" in v else "—")
        inference = (f"{v['inference_images_per_s']:.2f} | {v['inference_achieved_gflops']:.1f} | "
                     f"**{100 * v['inference_fraction_of_matmul_peak']:.0f} %**"
                     if "inference_images_per_s" in v else "— | — | —")
        lines.append(
            f"| {model} | {v.get('encoder') or '—'} | {v['params'] / 1e6:.2f} | "
            f"{v['forward_gflops_per_image']:.2f} | {'on' if v.get('xla') else 'off'} | "
            f"{v['images_per_s']:.2f} | {v['achieved_gflops']:.1f} | "
            f"**{100 * v['fraction_of_matmul_peak']:.0f} %** | {inference} | {versus} |")
    first = next(iter(figures["variants"].values()))
    lines += ["", f"Batch {first['batch_size']}, {first['precision']}; medians of "
              f"{first['step_s']['repeats']} interleaved rounds; training = `train_on_batch` "
              "(3× forward FLOPs), inference = `predict_on_batch` (1× forward FLOPs)."]
    return lines


def input_pipeline(data) -> list[str]:
    pipe, model = data["pipeline"], data["model"]
    return [_when(data), "",
            f"Pipeline ({pipe['dataset']}, {pipe['image_size'][0]}×{pipe['image_size'][1]}, batch "
            f"{pipe['batch_size']}, flip + scale/crop + photometric): first pass (decode, fill "
            f"cache) {pipe['first_pass_images_per_s']:.0f} images/s; later passes "
            f"**{pipe['images_per_s']:.0f} images/s**. Model ({model['model']}) trains at "
            f"{model['images_per_s']:.2f} images/s. Ratio: **{data['pipeline_over_model']:.0f}×** "
            f"(target ≥ {data['target_ratio']}×)."]


def inference(data) -> list[str]:
    lines = [_when(data), ""]
    if "latency" in data:
        lat = data["latency"]
        lines += [f"Latency, {lat['model']}, one {lat['image']} image:", "",
                  "| path | p50 ms | p95 ms | repeats |", "|---|---:|---:|---:|"]
        for key in ("forward_only", "predict_array"):
            v = lat[key]
            lines.append(f"| {key} | {v['p50_ms']:.0f} | {v['p95_ms']:.0f} | {v['repeats']} |")
        lines.append("")
    if "colorize" in data:
        c = data["colorize"]
        lines += [f"Colourising {c['labels']}: chapter `REV_LUT` loop {c['chapter_rev_lut_loop_ms']:.1f} ms, "
                  f"`ClassSet.colorize` {c['pixelwise_classset_colorize_ms']:.2f} ms → "
                  f"**{c['speedup']:.0f}×** (identical output: {c['outputs_identical']}).", ""]
    if "tiled" in data:
        t = data["tiled"]
        lines += [f"Overlap-tile prediction, {t['model']}, {t['image']}, {t['tiles']} tiles of "
                  f"{t['tile']} px (overlap {t['overlap']}): **{t['seconds']:.1f} s** "
                  f"({t['megapixels_per_s']:.2f} MP/s), peak RSS **{t['peak_rss_mb']:.0f} MiB** "
                  f"({t['peak_rss_mb_before_prediction']:.0f} MiB before the prediction: "
                  f"TensorFlow + model)."]
    return lines


def memory(data) -> list[str]:
    lines = [_when(data), "", "| precision | batch | image | peak RSS after build MiB | peak RSS training MiB | training adds MiB | first step s | later steps s |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for precision, r in data["runs"].items():
        lines.append(f"| {precision} | {r['batch_size']} | {r['image']} | {r['peak_rss_mb_after_build']:.0f} | "
                     f"**{r['peak_rss_mb']:.0f}** | {r['training_overhead_mb']:.0f} | "
                     f"{r['first_step_s']:.1f} | {', '.join(f'{s:.1f}' for s in r['step_s']) or '—'} |")
    return lines


def export(data) -> list[str]:
    """Latency of each export format against Keras fp32 and, for trained runs, IoU kept."""
    lines = [_when(data), "", "| model | image | format | median ms | p95 ms | speedup vs Keras | MB |",
             "|---|---|---|---:|---:|---:|---:|"]
    for model, entry in data["models"].items():
        for size, result in entry["sizes"].items():
            if "skipped" in result:
                lines.append(f"| {model} | {size} | skipped: {result['skipped']} | | | | |")
                continue
            for name, v in result["formats"].items():
                size_mb = f"{v['bytes'] / 1e6:.1f}" if "bytes" in v else ""
                lines.append(f"| {model} | {size} | {name} | {v['median_ms']:.1f} | "
                             f"{v['p95_ms']:.1f} | {v['speedup']:.2f} | {size_mb} |")
    parity = [(model, size, name, v) for model, entry in data["models"].items()
              for size, result in entry["sizes"].items()
              for name, v in (result.get("validation") or {}).items()]
    if parity:
        lines += ["", "| model | image | format | images | pixel agreement | mean IoU Keras | "
                  "mean IoU export | points lost |", "|---|---|---|---:|---:|---:|---:|---:|"]
        for model, size, name, v in parity:
            lines.append(f"| {model} | {size} | {name} | {v['images']} | {v['pixel_agreement']:.4f} | "
                         f"{100 * v['mean_iou_keras']:.2f} | {100 * v['mean_iou_export']:.2f} | "
                         f"{v['mean_iou_lost_points']:.2f} |")
    return lines


def camvid(runs: dict) -> list[str]:
    """Per-class IoU table of one or more CamVid runs (``results/camvid_run*.json``)."""
    names = list(next(iter(runs.values()))["evaluation_native"]["per_class"])
    header = "| class | " + " | ".join(f"{run} IoU %" for run in runs) + " |"
    lines = [header, "|---|" + "---:|" * len(runs)]
    for name in names:
        cells = [f"{100 * r['evaluation_native']['per_class'][name]['iou']:.1f}" for r in runs.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| **mean IoU** | " + " | ".join(
        f"**{100 * r['evaluation_native']['mean_iou']:.1f}**" for r in runs.values()) + " |")
    lines.append("| pixel accuracy | " + " | ".join(
        f"{100 * r['evaluation_native']['pixel_accuracy']:.1f}" for r in runs.values()) + " |")
    lines.append("| mean class accuracy | " + " | ".join(
        f"{100 * r['evaluation_native']['mean_class_accuracy']:.1f}" for r in runs.values()) + " |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    for name, render in (("dataset_build", dataset_build), ("training", training),
                         ("training_b32", training), ("training_encoders", training),
                         ("input_pipeline", input_pipeline), ("inference", inference),
                         ("memory", memory), ("export", export), ("export_run", export)):
        data = _load(name, args.quick)
        print(f"### {name}\n")
        print("\n".join(render(data)) if data else "_not measured_")
        print()
    runs = {path.stem.replace("camvid_", ""): json.loads(path.read_text())
            for path in sorted(RESULTS.glob("camvid_run*.json"))}
    if runs and not args.quick:
        print("### camvid\n")
        print("\n".join(camvid(runs)))


if __name__ == "__main__":
    main()
