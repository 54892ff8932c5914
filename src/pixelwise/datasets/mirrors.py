"""Download mirrors: one quick connection to each before TFDS downloads from it.

TFDS' downloader retries a failed connection ten times with growing pauses
(urllib3's ``Retry(total=10, backoff_factor=0.2)``: about 3.5 minutes per file), so
on a machine without network a build waits minutes per mirror before it says
anything useful. One TCP connection per mirror, tried first (all mirrors at once,
bounded by :data:`CONNECT_TIMEOUT_S`), tells the same in seconds; a mirror that
accepts it is then downloaded from as usual, with TFDS' retries, which do help
against a busy server.

A mirror reached through a proxy (``HTTP_PROXY``/``HTTPS_PROXY``, ``NO_PROXY``
honoured) is probed at the proxy.

Example:
    >>> unreachable(["http://127.0.0.1:9/"])  # doctest: +SKIP
    {'http://127.0.0.1:9/': 'cannot connect to 127.0.0.1:9: Connection refused'}
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterable
from urllib.parse import urlsplit

#: Seconds to wait for a mirror's host name to resolve and its port to accept a connection.
CONNECT_TIMEOUT_S = 10.0


def _endpoint(url: str) -> tuple[str, int]:
    """(host, port) a download of ``url`` first connects to: the proxy's when one is set."""
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    default_port = 443 if parts.scheme == "https" else 80
    return parts.hostname or "", parts.port or default_port


def connection_error(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why ``url``'s host cannot be reached (one try, no retry), or None when it accepts a connection.

    Args:
        url: An ``http://`` or ``https://`` address.
        timeout: Seconds allowed for each connection attempt (default :data:`CONNECT_TIMEOUT_S`).
    """
    host, port = _endpoint(url)
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}"
    reason = "no address"
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
            return None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
    return f"cannot connect to {host}:{port}: {reason}"


def unreachable(urls: Iterable[str], timeout: float = CONNECT_TIMEOUT_S) -> dict[str, str]:
    """``{url: reason}`` for each of ``urls`` whose host cannot be reached, all tried at once.

    A host name that has not resolved (the system resolver may wait on an absent
    network far longer) or a port that has not answered within ``timeout`` seconds
    counts as unreachable.

    Args:
        urls: Addresses (one per mirror is enough: only the host and port matter).
        timeout: Seconds to wait in all (default :data:`CONNECT_TIMEOUT_S`).
    """
    urls = list(dict.fromkeys(urls))
    results: dict[str, str | None] = {}

    def probe(url: str) -> None:
        results[url] = connection_error(url, timeout)

    # Daemon threads: a resolver stuck past the deadline must not keep the process alive.
    threads = [threading.Thread(target=probe, args=(url,), daemon=True) for url in urls]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout * 1.5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    failures = {}
    for url in urls:
        if url not in results:
            host, port = _endpoint(url)
            failures[url] = f"no answer from {host}:{port} within {timeout:g} s"
        elif results[url] is not None:
            failures[url] = results[url]
    return failures
