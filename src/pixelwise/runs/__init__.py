"""The run folder: what ``pixelwise train`` writes and evaluate/predict/export read.

``folder`` (:class:`RunFolder`: the layout and what is in it), ``loading`` (:func:`load_run`:
a model ready for use, with its class set and trained size), ``checks`` (before a training
writes: writable, new, resumable). Imports no TensorFlow; everything is imported on first use.
"""

from pixelwise._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "RunFolder": "folder", "CHECKPOINT_NAMES": "folder",
    "LoadedRun": "loading", "load_run": "loading", "resolve_model_class_set": "loading",
    "check_writable": "checks", "check_new_run": "checks", "check_resume": "checks",
})
