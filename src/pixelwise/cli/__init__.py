"""The ``pixelwise`` command line: a thin layer over the public Python API.

Each subcommand group lives in its own module (``datasets``, ``models``, ``train``,
``evaluate``, ``predict``, ``export``, ``report``) exposing ``register(subparsers)``; the handlers only parse
arguments and call public functions. Every user error surfaces as one line on
stderr and exit code 2. Library messages name Python arguments (``pass tile=N``); the CLI
adds the flag of each one its command has (``(command line: --tile for tile=)``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
import tempfile
import textwrap
import warnings

from pixelwise.onednn import prefer_eigen_for_batch_one

# Subcommand modules, in the order `pixelwise --help` lists them.
_COMMAND_MODULES = ("datasets", "models", "train", "evaluate", "predict", "export", "report")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` as a person reads it: every default stated once, required options marked.

    * An option's help ends with ``(default: X)`` unless its text already states the
      default (it holds ``(default``), the default is None or ``SUPPRESS`` (the text says
      what happens without the option), or the option is an on/off flag.
    * A required option's help ends with ``(required)``.
    * Descriptions keep their paragraphs and indented (example) lines; other lines wrap.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if not action.option_strings:
            return text
        if action.required:
            return f"{text} (required)"
        flag = action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction)
        if flag or "(default" in text or action.default in (None, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"

    def _format_args(self, action, default_metavar):
        if getattr(action, "show_single_metavar", False):  # options.JoinedSizeTokens
            return self._metavar_formatter(action, default_metavar)(1)[0]
        return super()._format_args(action, default_metavar)

    def _split_lines(self, text, width):
        # Never split an option name such as --model-arg at its hyphen.
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text, width, indent):
        blocks = []
        for block in text.strip("\n").split("\n\n"):
            lines, prose = [], []
            for line in block.splitlines() + [None]:
                if line is None or line.startswith((" ", "\t")):
                    if prose:
                        lines.append(textwrap.fill(" ".join(prose), width, initial_indent=indent,
                                                   subsequent_indent=indent,
                                                   break_on_hyphens=False))
                        prose = []
                    if line is not None:
                        lines.append(indent + line)
                else:
                    prose.append(line.strip())
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)


def parse_value(text: str):
    """Type a ``--model-arg`` value: int, float, bool (true/false/yes/no), none/null, JSON, or str.

    Example:
        >>> [parse_value(v) for v in ("16", "0.5", "true", "none", "[1, 2]", "same")]
        [16, 0.5, True, None, [1, 2], 'same']
    """
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.strip().startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


def parse_model_args(pairs) -> dict:
    """``["base_filters=16", "batch_norm=true"]`` -> ``{"base_filters": 16, "batch_norm": True}``."""
    values = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"Expected --model-arg KEY=VALUE (e.g. base_filters=16), received {pair!r}."
            )
        values[key.strip().replace("-", "_")] = parse_value(value)
    return values


# Notices TensorFlow's C++ libraries write straight to file descriptor 2 while they load, before
# any logging setting applies (TF_CPP_MIN_LOG_LEVEL cannot silence them). On a CPU-only machine
# they say nothing a user can act on and bury the one line an error should be.
# On CPUs with AVX-512 VNNI/BF16 or AMX, TensorFlow turns oneDNN on and says so once.
_TF_LOAD_NOISE = re.compile(
    r"absl::InitializeLog|cudart_stub\.cc|cuda_platform\.cc|cuda_executor\.cc|cuInit|"
    r"cpu_feature_guard\.cc|rebuild TensorFlow with the appropriate compiler flags|"
    r"^To enable the following instructions|oneDNN custom operations are on"
)


def load_tensorflow_quietly() -> None:
    """Import TensorFlow and probe devices with their load-time notices filtered out.

    Anything else TensorFlow writes while loading (a real import error's output, say)
    is passed on to stderr unchanged.
    """
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
            # The oneDNN notice comes on the first call, which may otherwise be the first op.
            with contextlib.suppress(ImportError, AttributeError):
                from tensorflow.python.util import _pywrap_util_port

                _pywrap_util_port.IsMklEnabled()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if line.strip() and not _TF_LOAD_NOISE.search(line):
                    print(line, file=sys.stderr)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with prefix abbreviations off, for ``pixelwise`` and every subcommand.

    With them on, ``--encoder mobilenetv3small`` was silently read as
    ``--encoder-lr-multiplier``. Subparsers are made with the class of their parent, so
    setting it on the top-level parser covers them all.
    """

    def __init__(self, *args, allow_abbrev: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)


def without_tensorflow(func):
    """Mark a subcommand handler that needs no TensorFlow, so :func:`main` does not load it.

    The mark sits on the handler that runs rather than in the parser's defaults, where a
    command group's default would leak into every subcommand of the group.
    """
    func.loads_tensorflow = False
    return func


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="pixelwise",
        description="Semantic segmentation on TensorFlow 2 / Keras 3 / TFDS: datasets, models, "
        "training, evaluation, inference and export.",
        formatter_class=HelpFormatter,
    )
    from pixelwise import __version__

    parser.add_argument("--version", action="version", version=f"pixelwise {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"pixelwise.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"pixelwise.cli.{name}":
                continue  # subcommand group not written yet
            raise
        module.register(subparsers)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """pixelwise's own warnings as one readable line; others as Python prints them."""
    if category.__module__.startswith("pixelwise"):
        return f"pixelwise: warning: {message}\n"
    return _python_format_warning(message, category, filename, lineno, line)


_python_format_warning = warnings.formatwarning


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pixelwise`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not sys.stderr.isatty():
        # TFDS' build and download bars (tqdm, on stderr) redraw with carriage returns and
        # cursor codes, which a log file keeps; off unless the user set TQDM_DISABLE.
        os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.formatwarning = _format_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if args.command == "predict" and not getattr(args, "tile", None):
            # One whole image per forward pass: Eigen beats oneDNN at batch 1 (pixelwise.onednn).
            prefer_eigen_for_batch_one()
        if getattr(args.func, "loads_tensorflow", True):  # see without_tensorflow
            load_tensorflow_quietly()
        result = args.func(args)
    except KeyboardInterrupt:
        print("pixelwise: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        message = _missing_backend_message(exc, os.environ.get("KERAS_BACKEND"))
        if message is None and not isinstance(exc, ValueError):  # a missing extra is one
            raise
        print(f"pixelwise: error: {message}" if message else
              f"pixelwise {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        # Bad input and unwritable or missing paths: one line, exit 2 (the API leaves nothing
        # half-written). An OSError without a message still names the path it failed on.
        message = with_flags(_one_line(exc), command_flags(parser, args))
        print(f"pixelwise {args.command}: error: {message}", file=sys.stderr)
        return 2
    return int(result or 0)


def command_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """Python argument name -> flag, for the (sub)command ``args`` ran: ``{"tile": "--tile"}``.

    An option's ``dest`` is the Python argument it feeds (``--num-classes`` ->
    ``num_classes``), unless the action says otherwise in ``python_name`` (set where the
    dest must differ); positional arguments have no flag and are left out.
    """
    flags = {}
    while parser is not None:
        chosen = None
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(args, action.dest, None) or "")
            elif action.option_strings and action.dest not in ("help", "version"):
                long = [o for o in action.option_strings if o.startswith("--")]
                flags[getattr(action, "python_name", action.dest)] = (long or
                                                                      action.option_strings)[0]
        parser = chosen
    return flags


_PYTHON_ARGUMENT = re.compile(r"(?<![\w.-])([a-z][a-z0-9_]*)=")


def with_flags(message: str, flags: dict[str, str]) -> str:
    """``message`` with the flag of each Python argument it names as ``name=`` appended.

    Example:
        >>> with_flags("pass tile=N or leave tile= out; mode='slide'.",
        ...            {"tile": "--tile", "mode": "--mode", "out": "--out"})
        "pass tile=N or leave tile= out; mode='slide'. (command line: --tile for tile=, --mode for mode=)"
        >>> with_flags("pass --tile N.", {"tile": "--tile"})
        'pass --tile N.'
    """
    named = dict.fromkeys(_PYTHON_ARGUMENT.findall(message))
    pairs = [f"{flags[name]} for {name}=" for name in named
             if name in flags and flags[name] not in message]
    return f"{message} (command line: {', '.join(pairs)})" if pairs else message


#: Keras backends other than TensorFlow -> how to install them for pixelwise.
_BACKEND_INSTALLS = {"jax": 'pip install "pixelwise[jax]"'}


def _missing_backend_message(exc: ModuleNotFoundError, backend: str | None) -> str | None:
    """The one-line error when ``KERAS_BACKEND`` names a backend that is not installed, else None.

    Example:
        >>> no_jax = ModuleNotFoundError("No module named 'jax'", name="jax")
        >>> _missing_backend_message(no_jax, "jax").split("; ")[1]
        'pip install "pixelwise[jax]", or unset KERAS_BACKEND to use TensorFlow'
        >>> _missing_backend_message(no_jax, None) is None  # jax missing, but not asked for
        True
    """
    missing = (exc.name or "").partition(".")[0]
    if not backend or missing not in (backend, backend + "lib"):  # jaxlib comes with jax
        return None
    install = _BACKEND_INSTALLS.get(backend, f"pip install {backend}")
    return (f"KERAS_BACKEND={backend} selects a Keras backend that is not installed ({exc}); "
            f"{install}, or unset KERAS_BACKEND to use TensorFlow")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in str(exc):
        text = f"{exc}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
