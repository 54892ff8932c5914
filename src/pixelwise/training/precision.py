"""``mixed_precision: auto``: bf16 where the hardware has bf16 units, fp32 elsewhere.

bf16 pays only where the chip multiplies in bf16: measured on a CPU with AVX-512 BF16,
``mixed_bfloat16`` trained the chapter's U-Net 1.99x faster than fp32; on an AVX2-only
CPU, 1.07x (issue 23). ``auto`` asks the device Keras trains on:

- a GPU: bf16 from compute capability 8.0 (Ampere) on; a TPU: always;
- a CPU: its flags in ``/proc/cpuinfo`` — ``avx512_bf16`` or ``amx_bf16`` on x86, ``bf16`` in
  an Arm core's ``Features``; without ``/proc/cpuinfo`` (not Linux), fp32.

The flag and capability checks are pure functions of text and numbers, so they are tested on
any machine; only :func:`accelerator_bf16` asks TensorFlow or JAX (imported there, so this
module imports without them).

Example:
    >>> cpu_bf16("flags\\t\\t: fpu sse2 avx2 fma")
    (False, 'CPU flags include no avx512_bf16, amx_bf16 or bf16 (no bf16 units)')
    >>> cpu_bf16("flags\\t\\t: fpu avx2 avx512f avx512_bf16")
    (True, 'CPU flags include avx512_bf16')
"""

from __future__ import annotations

from pathlib import Path

#: CPU flags of bf16 multiply units: x86's AVX-512 BF16 and AMX-BF16, Arm's BF16 extension.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
#: The first NVIDIA compute capability with bf16 tensor cores (Ampere).
BF16_GPU_CAPABILITY = (8, 0)


def cpu_bf16(cpuinfo: str | None) -> tuple[bool, str]:
    """Whether a CPU has bf16 units, from the text of its ``/proc/cpuinfo``, and why.

    Args:
        cpuinfo: str or None. The file's text (x86 ``flags`` lines, Arm ``Features`` lines);
            None where there is no such file (macOS, Windows).

    Returns:
        ``(has_bf16_units, reason)``.
    """
    if cpuinfo is None:
        return False, "no /proc/cpuinfo to read the CPU flags from (not Linux)"
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    for flag in BF16_CPU_FLAGS:
        if flag in flags:
            return True, f"CPU flags include {flag}"
    return False, f"CPU flags include no {', '.join(BF16_CPU_FLAGS[:-1])} or bf16 (no bf16 units)"


def gpu_bf16(name: str, capability) -> tuple[bool, str]:
    """Whether an NVIDIA GPU has bf16 units, from its compute capability, and why.

    Args:
        name: str. The device name, for the reason.
        capability: ``(major, minor)`` or ``"major.minor"``; None when unknown (not bf16).
    """
    if isinstance(capability, str):
        capability = tuple(int(part) for part in capability.split(".")[:2])
    if not capability:
        return False, f"GPU {name} reports no compute capability"
    shown = ".".join(str(part) for part in capability)
    if tuple(capability) >= BF16_GPU_CAPABILITY:
        return True, f"GPU {name} has compute capability {shown} (bf16 from 8.0)"
    return False, f"GPU {name} has compute capability {shown} (bf16 needs 8.0)"


def accelerator_bf16() -> tuple[bool, str] | None:
    """bf16 support of the GPU or TPU Keras trains on, or None when it trains on the CPU."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "tpu":
            return True, f"TPU {device.device_kind} computes in bf16"
        if device.platform == "gpu":
            return gpu_bf16(device.device_kind, getattr(device, "compute_capability", None))
        return None
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return gpu_bf16(details.get("device_name", gpus[0].name),
                            details.get("compute_capability"))
    return None


def read_cpuinfo(path: str | Path = "/proc/cpuinfo") -> str | None:
    """The text of ``/proc/cpuinfo``, or None where there is none."""
    try:
        return Path(path).read_text()
    except OSError:
        return None


def choose_mixed_precision(requested: str) -> tuple[str, str]:
    """The precision to train in for ``mixed_precision=requested``, and why.

    Args:
        requested: ``"none"``, ``"bf16"`` (kept as asked) or ``"auto"`` (the device decides).

    Returns:
        ``(chosen, reason)``: ``chosen`` is ``"none"`` or ``"bf16"``.
    """
    if requested != "auto":
        return requested, f"mixed_precision={requested!r} was asked for"
    accelerator = accelerator_bf16()
    supported, reason = accelerator if accelerator is not None else cpu_bf16(read_cpuinfo())
    return ("bf16" if supported else "none"), reason


__all__ = ["BF16_CPU_FLAGS", "cpu_bf16", "gpu_bf16", "accelerator_bf16", "read_cpuinfo",
           "choose_mixed_precision"]
