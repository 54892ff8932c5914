"""Read a legacy PyTorch ``state_dict`` file into NumPy arrays, without torch or running code.

A legacy (pre-zip) ``torch.save`` file, written by PyTorch before 1.6 or with
``_use_new_zipfile_serialization=False``, is five items one after the other: pickles of the
magic number, the protocol version 1001 and a ``sys_info`` dict; the main pickle (here an
``OrderedDict`` of name -> tensor, each tensor a view on a storage named by a persistent
id); a pickle of the storage keys, each followed by its element count (int64) and its raw
little-endian bytes.

Unpickling runs whatever the file names, so a ``.pth`` from the internet can execute code
under ``torch.load``. This module never imports torch and resolves only these globals:
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``torch._utils._rebuild_tensor`` and ``torch.<X>Storage`` for the types in
:data:`STORAGE_DTYPES`; everything else raises :class:`UnsafeCheckpointError`.
``BFloat16Storage`` is read as float32 (NumPy has no bfloat16). The zip format is not
read yet.

Example:
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "weights.pth")
    ...     write_legacy_state_dict(path, {"conv.weight": np.ones((8, 3), np.float32)})
    ...     weights = read_state_dict(path)
    >>> {name: array.shape for name, array in weights.items()}
    {'conv.weight': (8, 3)}
"""

from __future__ import annotations

import os
import pickle
import struct
from collections import OrderedDict
from collections.abc import Mapping
from typing import BinaryIO, NamedTuple

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: torch storage class -> dtype of its raw bytes in the file (always little-endian).
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "<u2", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}
_STORAGE_OF_DTYPE = {np.dtype(dtype): name for name, dtype in STORAGE_DTYPES.items()
                     if name != "BFloat16Storage"}
_RESAVE = "torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)"


class UnsafeCheckpointError(ValueError):
    """A checkpoint names something outside the allow-list; nothing of it was executed."""


# Objects the unpickler hands out are immutable (NamedTuples, a slot-less callable), so a
# BUILD opcode aimed at them fails instead of changing this module's state.
class _StorageType(NamedTuple):
    name: str


class _Storage(NamedTuple):
    key: str
    offset: int


class _Tensor(NamedTuple):
    storage: _Storage
    offset: int
    size: tuple
    stride: tuple


class _RebuildTensor:
    __slots__ = ()

    def __call__(self, storage, storage_offset, size, stride, *_requires_grad_hooks_metadata):
        if not isinstance(storage, _Storage):
            raise ValueError("a tensor is not built from a ('storage', ...) persistent id")
        return _Tensor(storage, storage_offset, tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, path: str, storage_types: dict[str, str]):
        super().__init__(file)
        self.path, self.storage_types = path, storage_types

    def refusal(self, reason: str) -> UnsafeCheckpointError:
        return UnsafeCheckpointError(
            f"Refusing to read {self.path}: {reason}. pixelwise reads only a plain state_dict "
            "of tensors (collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
            "torch.*Storage) and never imports torch, so reading cannot run code. If the file "
            f"holds a whole model or other objects, re-save its state_dict: {_RESAVE}."
        )

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _RebuildTensor()
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise self.refusal(f"it refers to {module}.{name}, which is not on the allow-list")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise self.refusal(f"its persistent id {repr(pid)[:80]} is not a "
                               "('storage', torch.<X>Storage, key, location, numel, view) tuple")
        key, view = pid[2], pid[5]
        if self.storage_types.setdefault(key, pid[1].name) != pid[1].name:
            raise ValueError(f"storage {key!r} is declared with two types")
        # A legacy storage view (view_key, offset, size) starts `offset` elements into its root.
        return _Storage(key, 0 if view is None else view[1])


def _read_storages(file: BinaryIO, keys, storage_types: dict[str, str]) -> dict[str, np.ndarray]:
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)):
        raise ValueError(f"expected a list of storage keys, received {repr(keys)[:80]}")
    file_size, storages = os.fstat(file.fileno()).st_size, {}
    for key in keys:
        if key not in storage_types:
            raise ValueError(f"storage {key!r} has data but no tensor declares it")
        dtype = np.dtype(STORAGE_DTYPES[storage_types[key]])
        header = file.read(8)
        if len(header) < 8:
            raise ValueError(f"the file ends before storage {key!r}: it is truncated")
        count, remaining = struct.unpack("<q", header)[0], file_size - file.tell()
        # Checked before reading, so a corrupt count cannot ask for terabytes.
        if not 0 <= count <= remaining // dtype.itemsize:
            raise ValueError(
                f"storage {key!r} declares {count} elements of {dtype.itemsize} bytes, but "
                f"{remaining} bytes remain: the file is truncated or corrupt"
            )
        data = np.frombuffer(file.read(count * dtype.itemsize), dtype)
        if storage_types[key] == "BFloat16Storage":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        storages[key] = data
    return storages


def _array(name: str, tensor, storages: dict[str, np.ndarray]) -> np.ndarray:
    if not (isinstance(name, str) and isinstance(tensor, _Tensor)):
        raise ValueError(f"expected a state_dict mapping names (str) to tensors, received "
                         f"{name!r}: {type(tensor).__name__}")
    if tensor.storage.key not in storages:
        raise ValueError(f"tensor {name!r} uses storage {tensor.storage.key!r}, which has no data")
    storage = storages[tensor.storage.key]
    start, size, stride = tensor.storage.offset + tensor.offset, tensor.size, tensor.stride
    numbers = (start, *size, *stride)
    if len(size) != len(stride) or any(type(n) is not int or n < 0 for n in numbers):
        raise ValueError(f"tensor {name!r} has offset {start}, size {size}, stride {stride}")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = start + sum((n - 1) * step for n, step in zip(size, stride))
    if last >= storage.size:
        raise ValueError(f"tensor {name!r} reaches element {last} of storage "
                         f"{tensor.storage.key!r}, which holds {storage.size}")
    view = np.lib.stride_tricks.as_strided(
        storage[start:], shape=size, strides=[step * storage.itemsize for step in stride])
    return np.array(view, copy=True, order="C")


def _read(file: BinaryIO, path: str) -> dict[str, np.ndarray]:
    if file.read(4) == b"PK\x03\x04":
        raise ValueError("it is a zip archive, the format torch.save writes by default since "
                         "PyTorch 1.6; only the legacy format is read, the zip format is not "
                         f"supported yet. Re-save it where torch runs: {_RESAVE}")
    file.seek(0)
    storage_types: dict[str, str] = {}

    def load():
        return _StateDictUnpickler(file, path, storage_types).load()

    magic = load()
    if magic != MAGIC_NUMBER:
        raise ValueError(f"expected the magic number {MAGIC_NUMBER:#x} of a legacy torch.save "
                         f"file first, received {repr(magic)[:80]}")
    protocol, sys_info = load(), load()
    if protocol != PROTOCOL_VERSION:
        raise ValueError(f"expected protocol version {PROTOCOL_VERSION}, received {protocol!r}")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ValueError(f"expected sys_info with little_endian True, received {sys_info!r}")
    state_dict = load()
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"expected a state_dict (a mapping of names to tensors), received "
                         f"{type(state_dict).__name__}; if it is a training checkpoint, save "
                         "only its model's state_dict")
    storages = _read_storages(file, load(), storage_types)
    return {name: _array(name, tensor, storages) for name, tensor in state_dict.items()}


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a legacy ``torch.save(state_dict)`` file, as contiguous NumPy arrays.

    Args:
        path: str or PathLike. A file written by ``torch.save(model.state_dict(), path)``
            before PyTorch 1.6, or with ``_use_new_zipfile_serialization=False``.

    Returns:
        dict[str, np.ndarray]: name -> array, in the file's order, with the tensors' shapes
        and dtypes (bfloat16 becomes float32).

    Raises:
        UnsafeCheckpointError: the file names a global outside the allow-list (a pickled
            model, or code); nothing was executed.
        ValueError: not a legacy torch file (zip format, bad magic), truncated or corrupt.
    """
    with open(path, "rb") as file:
        try:
            return _read(file, os.fspath(path))
        except UnsafeCheckpointError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure of a hostile pickle
            detail = str(error) if isinstance(error, ValueError) else (
                "expected pickles of the magic number, version, sys_info, state_dict and "
                "storage keys, then the storage data; received a file that fails to load "
                f"there ({type(error).__name__}: {error})")
            raise ValueError(f"Cannot read {os.fspath(path)} as a legacy PyTorch state_dict: "
                             f"{detail}") from error


def _global(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _opcodes(value) -> bytes:
    """Protocol-2 opcodes that push ``value`` (str, int, bool, None, tuple; bytes are opcodes)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, tuple):
        return pickle.MARK + b"".join(map(_opcodes, value)) + pickle.TUPLE
    if isinstance(value, str):
        return pickle.BINUNICODE + struct.pack("<I", len(value.encode())) + value.encode()
    return pickle.dumps(value, protocol=2)[2:-1]  # ints, bools, None: no memo entries


def write_legacy_state_dict(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as a legacy ``torch.save`` file of a state_dict, without torch.

    The layout and opcodes of ``torch.save(state_dict, path,
    _use_new_zipfile_serialization=False)``, less the state_dict's ``_metadata`` and pickle
    memo entries; the opcodes are written directly.

    Args:
        path: str or PathLike. File to write.
        arrays: Mapping[str, np.ndarray]. Name -> array; dtypes float16/32/64, int8/16/32/64,
            uint8 or bool.

    Raises:
        ValueError: an array's dtype has no torch storage type.
    """
    new_ordered_dict = _global("collections", "OrderedDict") + pickle.EMPTY_TUPLE \
        + pickle.REDUCE
    main, data = [pickle.PROTO + b"\x02", new_ordered_dict, pickle.MARK], []
    for key, (name, array) in enumerate(arrays.items()):
        array = np.asarray(array)
        array = array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)
        if array.dtype not in _STORAGE_OF_DTYPE:
            raise ValueError(f"Expected arrays of dtype {sorted(map(str, _STORAGE_OF_DTYPE))}; "
                             f"received {name!r} of dtype {array.dtype}")
        storage = ("storage", _global("torch", _STORAGE_OF_DTYPE[array.dtype]), str(key), "cpu",
                   array.size, None)
        stride = tuple(int(np.prod(array.shape[axis + 1:])) for axis in range(array.ndim))
        main += [_opcodes(str(name)), _global("torch._utils", "_rebuild_tensor_v2"),
                 pickle.MARK, _opcodes(storage), pickle.BINPERSID,
                 *map(_opcodes, (0, array.shape, stride, False)), new_ordered_dict,
                 pickle.TUPLE, pickle.REDUCE]
        data.append(struct.pack("<q", array.size) + array.tobytes())
    sys_info = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    keys = [str(key) for key in range(len(data))]
    with open(path, "wb") as file:
        file.write(b"".join(pickle.dumps(item, protocol=2) for item in
                            (MAGIC_NUMBER, PROTOCOL_VERSION, sys_info)))
        file.write(b"".join(main) + pickle.SETITEMS + pickle.STOP)
        file.write(pickle.dumps(keys, protocol=2) + b"".join(data))
