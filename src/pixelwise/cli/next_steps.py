"""What ``pixelwise train`` prints when it ends: where the results are, and what to run next.

Every path it names as existing exists when it is printed: the curves, metrics,
checkpoints and TensorBoard logs are the run folder's, and a few validation images are
written to ``RUN/examples/`` first (:func:`write_examples`) so that the ``predict``
command it suggests works on any machine, network or not. Importable without
TensorFlow; :func:`write_examples` loads the dataset code when it runs.

Example (the quickstart's ending)::

    Results in runs/quickstart:
      curves       runs/quickstart/curves.png
      metrics      runs/quickstart/metrics.json (per epoch: runs/quickstart/history.csv)
      ...
    Next:
      pixelwise predict --run runs/quickstart --input-size 128x128 \\
          --out runs/quickstart/predictions runs/quickstart/examples/*.png
      pixelwise evaluate --run runs/quickstart
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

#: Folder of the run where :func:`write_examples` puts the validation images.
EXAMPLES_DIR = "examples"


def _base_split(split: str) -> str:
    """``"validation[:50%]"`` or ``"train+validation"`` -> the first split's name."""
    return re.split(r"[+\[]", split, maxsplit=1)[0].strip()


def write_examples(config, run) -> list[Path]:
    """Copy the first validation images of ``config``'s dataset into ``run``'s ``examples/``.

    Args:
        config: The run's :class:`~pixelwise.training.config.TrainConfig`.
        run: Its :class:`~pixelwise.runs.RunFolder`.

    Returns:
        The PNG files written.
    """
    # TensorFlow: only once training ran.
    from pixelwise.datasets.samples import write_images
    from pixelwise.data.selection import make_validation_share
    from pixelwise.data.splits import SplitOptions

    share = make_validation_share(SplitOptions.from_mapping(config.to_dict()))
    if share is not None:  # the dataset has no validation split; the run made its own
        return write_images(config.dataset, share.split, run.path / EXAMPLES_DIR,
                            data_dir=config.data_dir, filenames=share.validation_names)
    split = config.train_split if config.validation_split == "none" else config.validation_split
    return write_images(config.dataset, _base_split(split),
                        run.path / EXAMPLES_DIR, data_dir=config.data_dir)


def _quote(path) -> str:
    return shlex.quote(str(path))


def format_next_steps(run, image_size, examples=(), examples_error: str | None = None) -> str:
    """The closing lines of ``pixelwise train``: the run's files, then the next commands.

    Args:
        run: The :class:`~pixelwise.runs.RunFolder` written.
        image_size: ``(height, width)`` the model was trained at; ``predict`` is told to
            use it.
        examples: Image files written by :func:`write_examples` (default none).
        examples_error: Why no examples could be written, if so (printed instead).

    Returns:
        Text without a trailing newline.
    """
    height, width = image_size
    checkpoints = [p.name for p in (run.checkpoint_path("best"), run.checkpoint_path("last"))
                   if p.exists()]
    lines = [f"Results in {run.path}:",
             f"  curves       {run.curves_path}",
             f"  metrics      {run.metrics_path} (per epoch: {run.history_path})"]
    if checkpoints:
        lines.append(f"  checkpoints  {run.checkpoint_dir}/ ({', '.join(checkpoints)})")
    lines.append(f"  TensorBoard  {run.tensorboard_dir}/ (view: tensorboard --logdir "
                 f"{_quote(run.tensorboard_dir)})")
    predictions = run.path / "predictions"
    if examples:
        folder = Path(examples[0]).parent
        lines.append(f"  examples     {folder}/ ({len(examples)} validation images to try "
                     "predict on)")
        images = f"{_quote(folder)}/*.png"
    else:
        if examples_error:
            lines.append(f"  (no example images: {examples_error})")
        images = "IMAGE [IMAGE ...]"
    lines += [
        "Next:",
        f"  pixelwise predict --run {_quote(run.path)} --input-size {height}x{width} "
        f"--out {_quote(predictions)} {images}",
        f"      # masks, overlays, boxes and pixel counts in {predictions}/",
        f"  pixelwise evaluate --run {_quote(run.path)}",
        f"      # per-class IoU and a confusion matrix of the validation split, in {run.path}/",
    ]
    return "\n".join(lines)


def report(result, config) -> str:
    """Write the examples (unless that fails) and return :func:`format_next_steps`' text.

    A failure to write the examples does not fail the finished training: it is named in
    the text instead.
    """
    try:
        examples, error = write_examples(config, result.run), None
    except (OSError, ValueError) as exc:  # FileNotFoundError is an OSError
        examples, error = [], str(exc)
    return format_next_steps(result.run, config.image_size, examples, error)
