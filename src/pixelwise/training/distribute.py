"""Where training runs: tf.distribute strategies, Keras' JAX distribution, the dtype policy.

- ``default``: one device (TF's default strategy).
- ``mirrored``: synchronous data parallelism over this machine's devices. On TensorFlow,
  ``tf.distribute.MirroredStrategy`` over the visible GPUs, or over all logical CPU devices
  when there is no GPU; under ``KERAS_BACKEND=jax``, ``keras.distribution.DataParallel``
  over ``keras.distribution.list_devices()`` (:class:`DataParallelStrategy`).
- ``multi-worker``: ``tf.distribute.MultiWorkerMirroredStrategy``, cluster and
  task from ``TF_CONFIG``; worker 0 (or the ``chief``) writes the run folder. TensorFlow only.

In every case the batch size of the pipeline is the *global* batch; the strategy
splits it across the replicas.

Example:
    >>> strategy = make_strategy("mirrored")          # doctest: +SKIP
    >>> with dtype_policy("bf16"), fit_scope(strategy):  # doctest: +SKIP
    ...     with strategy.scope():
    ...         model = build_model()
    ...     model.fit(batches)
"""

from __future__ import annotations

import contextlib
import json
import os

import keras
import tensorflow as tf

# The choices live with the other options, where `pixelwise --help` reads them without TensorFlow.
from pixelwise.training.config import STRATEGIES


@contextlib.contextmanager
def dtype_policy(mixed_precision: str):
    """Set Keras' global dtype policy for the duration of a ``with`` block, then restore it.

    ``mixed_precision`` is ``"none"`` or ``"bf16"``; ``"auto"`` is resolved first by
    :func:`pixelwise.training.precision.choose_mixed_precision`.
    """
    if mixed_precision not in ("none", "bf16"):
        raise ValueError(
            f"Expected mixed_precision 'none' or 'bf16', received {mixed_precision!r}; resolve "
            "'auto' with pixelwise.training.precision.choose_mixed_precision first."
        )
    previous = keras.config.dtype_policy()
    if mixed_precision == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """TF's MultiWorkerMirroredStrategy with a ``reduce`` that Keras 3's ``fit`` can use.

    Keras 3.15 calls ``strategy.reduce`` with a nested (image, label) batch and
    with ``axis=0`` on scalar logs under multi-worker; TF's collective strategy
    handles neither (keras-team/keras#20585). Reducing each tensor, scalars over
    replicas only, gives what Keras means.
    """

    def reduce(self, reduce_op, value, axis):
        def reduce_one(tensor):
            rank = self.experimental_local_results(tensor)[0].shape.rank
            return super(MultiWorkerMirroredStrategy, self).reduce(
                reduce_op, tensor, None if rank == 0 else axis
            )

        return tf.nest.map_structure(reduce_one, value)


class DataParallelStrategy:
    """``mirrored`` under JAX: ``keras.distribution.DataParallel`` with a strategy's face.

    The weights are replicated on every device and each batch is split along its first
    axis; JAX's SPMD compiler all-reduces the gradients (and BatchNorm's batch statistics,
    which are those of the global batch, as on one device). Variables must be created in
    :meth:`scope`, and ``fit`` must run in :func:`fit_scope`, where Keras shards the batches.

    Args:
        devices: JAX devices (default None: ``keras.distribution.list_devices()``, the GPUs
            or TPUs, else the CPUs, e.g. 2 with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``).
    """

    def __init__(self, devices=None):
        devices = list(devices or keras.distribution.list_devices())
        self.distribution = keras.distribution.DataParallel(devices=devices)
        self.num_replicas_in_sync = len(devices)

    def scope(self):
        """Make the distribution current (it is restored on leaving the block)."""
        return self.distribution.scope()


def fit_scope(strategy):
    """The context ``fit`` runs in: a Keras distribution must be current while ``fit``
    shards the batches; a ``tf.distribute`` strategy needs none (Keras finds the one
    the model was built in)."""
    if isinstance(strategy, DataParallelStrategy):
        return strategy.scope()
    return contextlib.nullcontext()


def _without_remapper() -> None:
    """Turn off Grappler's remapper (op fusion) for replicas on logical CPU devices.

    With oneDNN on (pixelwise's default on x86, TensorFlow's on AVX-512 VNNI/BF16 CPUs),
    the remapper fails on the replicated graph ("remapper failed: ... fanout
    '.../LeakyReluGrad' exist for missing node '.../BiasAdd'") and logs it as an error.
    The failure is harmless (the graph runs unfused) but reads like the cause of issue 24,
    which it was not: that was oneDNN's convolution of an empty replica batch, fixed by
    padding validation (:func:`pixelwise.data.pipeline.void_padding`). The remapper only
    fuses ops for speed, and mirrored replicas on one CPU are for tests and small jobs.
    """
    tf.config.optimizer.set_experimental_options({"remapping": False})


def make_strategy(name: str):
    """The strategy for ``--strategy`` (create it before any other TF op).

    ``mirrored`` replicates over the visible GPUs, or over all logical CPU devices when
    there is no GPU (under JAX: :class:`DataParallelStrategy` over all JAX devices);
    ``multi-worker`` reads the cluster from ``TF_CONFIG``.
    """
    jax = keras.backend.backend() == "jax"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored" and jax:
        return DataParallelStrategy()
    if name == "multi-worker" and jax:
        raise ValueError(
            "strategy='multi-worker' is TensorFlow's MultiWorkerMirroredStrategy, but Keras "
            "runs on JAX (KERAS_BACKEND=jax); pass strategy='mirrored' (DataParallel over this "
            "machine's devices) or train with KERAS_BACKEND=tensorflow."
        )
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if not gpus:
            _without_remapper()
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "strategy='multi-worker' reads the cluster from the TF_CONFIG environment "
                "variable, which is not set; e.g. TF_CONFIG='{\"cluster\": {\"worker\": "
                "[\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}'."
            )
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
        return MultiWorkerMirroredStrategy()
    raise ValueError(f"Expected strategy one of {list(STRATEGIES)}, received {name!r}.")


def is_chief(strategy) -> tuple[bool, int]:
    """``(is_chief, task_index)`` of this process: ``(True, 0)`` unless multi-worker.

    The chief is the ``chief`` task, or worker 0 when the cluster has no chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True, 0
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
    return chief, task_id
