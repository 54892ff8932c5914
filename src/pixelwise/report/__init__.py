"""``pixelwise report``: what a run learned, on one self-contained HTML page.

``collect`` gathers the numbers and pictures, ``html`` renders them. Imported on first use.
"""

from pixelwise._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "build_report": "collect",
})
