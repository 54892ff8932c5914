"""Shared measuring code of the benchmark scripts: repeats, medians, machine facts, JSON output.

Every benchmark script measures with :func:`repeat`, reports medians (and the spread), takes
ratios between figures measured in the same process, and ends with :func:`report`, which
prints the figures and writes them as JSON to ``benchmarks/results/<name>.json`` (or
``<name>.quick.json`` for ``--quick`` smoke runs).

Example:
    >>> times = repeat(lambda: sum(range(1000)), repeats=5)
    >>> summary(times)["median_s"] > 0
    True
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(
    os.environ.get("PIXELWISE_SHARED_DATASETS", PROJECT_ROOT.parent / "shared" / "datasets")
)


def repeat(fn, repeats: int = 5, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def percentile(values, q: float) -> float:
    """Linear-interpolation percentile (``q`` in 0..100) of a list of numbers."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(times: list[float]) -> dict:
    """Median, min, max and p95 (seconds) of a list of timings, with the number of repeats."""
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "p95_s": percentile(times, 95),
        "repeats": len(times),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))
    return []


def machine_info() -> dict:
    """CPU model, core count, RAM, load, library versions and the date of this measurement."""
    import keras
    import numpy as np
    import tensorflow as tf

    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
    except (OSError, IndexError, ValueError):
        mem_kib = 0
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _lscpu_model(),
        "cpu_flags": _cpu_flags(),
        "nproc": os.cpu_count(),
        "ram_gib": round(mem_kib / 2**20, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def load_recipe(path: Path) -> dict:
    """A training recipe (``configs/*.yaml``) as a dict."""
    import yaml

    return yaml.safe_load(Path(path).read_text())


def recipe_image_size(recipe: dict) -> tuple[int, int]:
    """The recipe's training ``image_size`` as (height, width); an int means a square."""
    size = recipe["image_size"]
    return (size, size) if isinstance(size, int) else tuple(size)


def report(name: str, results: dict, quick: bool = False, out: str | None = None) -> Path:
    """Print ``results`` as indented JSON and write them to ``benchmarks/results/``.

    Args:
        name: Benchmark name, used for the file name.
        results: The figures (JSON-serialisable).
        quick: Smoke run: the file is ``<name>.quick.json`` so it never replaces real figures.
        out: Explicit output path instead.

    Returns:
        The path written.
    """
    results = {"benchmark": name, "quick": quick, "command": " ".join(sys.argv),
               "load_average_at_end": [round(x, 2) for x in os.getloadavg()], **results}
    text = json.dumps(results, indent=2, default=float)
    print(text)
    path = Path(out) if out else RESULTS_DIR / f"{name}{'.quick' if quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path


def run_isolated(args: list[str], timeout: float | None = None) -> dict:
    """Run ``python <args>`` in a fresh process and parse the JSON object on its last stdout line.

    Used for peak-memory figures: each measurement gets its own process, so its ``ru_maxrss``
    is not inflated by what an earlier measurement allocated.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"isolated run {args} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1])


class WorkerProcess:
    """A benchmark's worker process, spoken to in JSON lines over its stdin and stdout.

    ``bench_backends.py`` and ``bench_peers.py`` start one per backend or framework
    (``python SCRIPT --worker LABEL``, with ``env`` added to this process's environment),
    send it a setup, then ask it to measure round by round. The worker's stderr is this
    process's.
    """

    def __init__(self, script: str, label: str, env: dict[str, str] | None = None):
        self.label = label
        self.process = subprocess.Popen(
            [sys.executable, script, "--worker", label], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})

    def send(self, message: dict) -> None:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise RuntimeError(f"the {self.label} worker ended (exit {code}); its error is "
                               "above, on stderr")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
