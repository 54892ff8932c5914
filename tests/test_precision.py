"""``mixed_precision: auto``: the bf16 decision from CPU flags and GPU capability, and the run's record."""

from __future__ import annotations

import json

import pytest

from pixelwise.cli import build_parser
from pixelwise.cli.train import overrides_from_args
from pixelwise.training.config import TrainConfig
from pixelwise.training.config_files import resolve_config
from pixelwise.training.precision import choose_mixed_precision, cpu_bf16, gpu_bf16, read_cpuinfo
from training_fixture import TINY

# Two cores of /proc/cpuinfo as x86 Linux writes it, trimmed; {flags} differs per test.
X86 = """processor\t: {n}
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU
flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 sse4_1 sse4_2 avx f16c avx2 fma bmi2 {flags}
bugs\t\t: spectre_v1 spectre_v2
"""
AVX2_ONLY = X86.format(n=0, flags="") + "\n" + X86.format(n=1, flags="")
# Arm (e.g. Graviton3) lists its extensions as Features.
ARM = "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd sve bf16 i8mm\nCPU part\t: 0xd40\n"


def test_avx2_only_cpu_trains_in_fp32():
    supported, reason = cpu_bf16(AVX2_ONLY)
    assert not supported
    assert "no avx512_bf16, amx_bf16 or bf16" in reason


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_x86_bf16_units_choose_bf16(flag):
    text = X86.format(n=0, flags=f"avx512f avx512_vnni {flag}")
    assert cpu_bf16(text) == (True, f"CPU flags include {flag}")


def test_arm_bf16_feature_chooses_bf16():
    assert cpu_bf16(ARM) == (True, "CPU flags include bf16")
    assert not cpu_bf16(ARM.replace(" bf16", ""))[0]


def test_avx512_without_bf16_is_not_enough():
    # AVX-512 F and VNNI (int8) without BF16: Cascade Lake, no bf16 multiply units.
    assert not cpu_bf16(X86.format(n=0, flags="avx512f avx512bw avx512_vnni"))[0]


def test_no_cpuinfo_outside_linux_is_fp32_with_a_reason(tmp_path):
    assert read_cpuinfo(tmp_path / "absent") is None
    supported, reason = cpu_bf16(None)
    assert not supported and "not Linux" in reason


@pytest.mark.parametrize("capability, expected", [
    ((8, 0), True), ("9.0", True), ((8, 6), True), ((7, 5), False), ("7.0", False), (None, False),
])
def test_gpus_have_bf16_from_compute_capability_8(capability, expected):
    supported, reason = gpu_bf16("NVIDIA X", capability)
    assert supported is expected and "NVIDIA X" in reason


def test_explicit_choices_are_kept_as_asked():
    assert choose_mixed_precision("none")[0] == "none"
    assert choose_mixed_precision("bf16")[0] == "bf16"


@pytest.mark.slow  # ~5 s alone: imports TensorFlow to ask for GPUs
def test_auto_on_this_cpu_follows_its_flags():
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the device query below is TensorFlow's")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU decides, not the CPU flags")
    text = read_cpuinfo() or ""
    expected = "bf16" if any(f in text.split() for f in ("avx512_bf16", "amx_bf16", "bf16")) else "none"
    chosen, reason = choose_mixed_precision("auto")
    assert chosen == expected and reason


def test_cli_and_config_accept_auto():
    args = build_parser().parse_args(["train", "--mixed-precision", "auto"])
    config = resolve_config(None, overrides_from_args(args), resume=False)
    assert config.mixed_precision == "auto"
    with pytest.raises(ValueError, match="mixed_precision one of"):
        TrainConfig(mixed_precision="fp8").validated()
    assert TrainConfig().mixed_precision == "none"  # the default stays fp32


def test_dtype_policy_refuses_an_unresolved_auto():
    from pixelwise.training.distribute import dtype_policy

    with pytest.raises(ValueError, match="choose_mixed_precision"):
        with dtype_policy("auto"):
            pass


@pytest.mark.slow
def test_auto_run_records_the_choice_and_its_reason(voc2007_built, tmp_path, capsys):
    from pixelwise.runs.folder import RunFolder
    from pixelwise.training import train

    out = tmp_path / "run"
    result = train(TrainConfig.from_dict({**TINY, **voc2007_built, "epochs": 1,
                                          "mixed_precision": "auto", "out": str(out)}))
    chosen, reason = choose_mixed_precision("auto")
    run = RunFolder(out)
    assert json.loads(run.config_path.read_text())["mixed_precision"] == "auto"  # as asked
    metrics = json.loads(run.metrics_path.read_text())
    assert metrics["mixed_precision_chosen"] == chosen
    assert metrics["mixed_precision_reason"] == reason
    from pixelwise.onednn import onednn_enabled

    assert metrics["onednn"] is onednn_enabled()  # whether TensorFlow ran oneDNN's kernels
    assert result.model.dtype_policy.name == ("mixed_bfloat16" if chosen == "bf16" else "float32")
    assert capsys.readouterr().out.count(f"mixed_precision auto: {chosen} ({reason})") == 1
