"""Initial weights of an encoder: none, ImageNet through Keras' own cache, or a local file.

``encoder_weights`` takes what ``keras.applications.<Application>(include_top=False,
weights=...)`` takes:

- ``None``: random initialisation (training from scratch).
- ``"imagenet"``: Keras downloads the file once into its cache (``~/.keras/models``, or
  ``$KERAS_HOME/models``) and checks its checksum. When the file is not cached, pixelwise
  first tries one connection to the download host (a few seconds at most), so a machine
  that is offline or behind a firewall gets one clear ``FileNotFoundError`` naming the
  file, where Keras looks for it and the alternatives, instead of a long stall or a
  Keras traceback. Where a proxy is configured (``HTTPS_PROXY``), Keras' download goes
  through it and pixelwise does not probe.
- a path: a weights file of that application, e.g. a ``.weights.h5`` written by
  ``keras.applications.ResNet50(include_top=False).save_weights(path)``, or Keras' own
  ``*_notop.h5`` file copied from a machine that has it (into ``~/.keras/models`` it needs
  no path at all).

Example:
    >>> imagenet_cache_path("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5").name
    'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5'
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path

from keras.src.backend.config import keras_home

#: Seconds the one connection attempt to the download host may take.
CONNECT_TIMEOUT_S = 5.0


def imagenet_cache_path(file_name: str) -> Path:
    """Where ``keras.utils.get_file`` keeps ``file_name``: ``<KERAS_HOME>/models/``.

    Keras falls back to ``/tmp/.keras`` when its home folder is not writable; so does this.
    """
    base = os.path.expanduser(keras_home())
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return Path(base) / "models" / file_name


def _uses_proxy(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return bool(urllib.request.getproxies().get(parts.scheme)) and not \
        urllib.request.proxy_bypass(parts.hostname or "")


def connection_problem(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why a TCP connection to ``url``'s host fails, or None when it opens (nothing is sent).

    The attempt, name lookup included, runs in a thread given ``timeout`` seconds, so a
    resolver that never answers cannot stall the caller.
    """
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: dict[str, BaseException] = {}

    def attempt():
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                pass
        except OSError as error:
            outcome["error"] = error

    thread = threading.Thread(target=attempt, daemon=True, name="pixelwise-weights-probe")
    thread.start()
    thread.join(timeout + 1.0)
    if thread.is_alive():
        return f"no answer from {parts.hostname} within {timeout:g} s"
    error = outcome.get("error")
    return None if error is None else f"{type(error).__name__}: {error}"


def unavailable_error(encoder: str, file_name: str, origin: str, reason: str) -> FileNotFoundError:
    """The one error for ImageNet weights that are neither cached nor downloadable."""
    cached = imagenet_cache_path(file_name)
    return FileNotFoundError(
        f"The ImageNet weights of encoder {encoder!r} are not in Keras' cache ({cached}) and "
        f"cannot be downloaded from {origin} ({reason}). Copy {file_name} into "
        f"{cached.parent}/ from a machine that has it (Keras checks its checksum), pass "
        f"encoder_weights=PATH with a weights file of keras.applications' {encoder}, or "
        "encoder_weights=None to train the encoder from scratch."
    )


def check_imagenet_available(encoder: str, file_name: str, origin: str) -> None:
    """Raise :func:`unavailable_error` fast when the file is not cached and the host is unreachable.

    Args:
        encoder: str. Encoder name, for the message.
        file_name: str. Keras' file name (``resnet50_..._notop.h5``).
        origin: str. URL Keras downloads it from.

    Raises:
        FileNotFoundError: not cached, and no connection to the host opens.
    """
    if imagenet_cache_path(file_name).is_file() or _uses_proxy(origin):
        return
    problem = connection_problem(origin)
    if problem is not None:
        raise unavailable_error(encoder, file_name, origin, problem)


def check_weights_file(encoder: str, path) -> str:
    """``path`` as a string, or a FileNotFoundError that says what ``encoder_weights`` takes."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"Expected encoder_weights None, 'imagenet' or the path of a weights file of "
            f"keras.applications' {encoder} (e.g. a .weights.h5 saved from it); received "
            f"{str(path)!r}, which is not a file."
        )
    return str(path)
