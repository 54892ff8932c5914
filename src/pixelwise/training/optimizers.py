"""The training optimizers, with a learning-rate multiplier per variable for fine-tuning.

Fine-tuning a pretrained encoder wants two things Keras' optimizers do not offer: a
lower learning rate for the encoder than for the decoder, and a frozen encoder that
later thaws, within one ``fit`` and on every backend. Changing which variables are
trainable in the middle of ``fit`` does not work on JAX: its train step and
``optimizer.stateless_apply`` take the lists of trainable variables fixed when training
starts. So pixelwise keeps every variable trainable and gives the optimizer a
multiplier per variable instead:

- ``multiplier`` 1 (default): the usual update;
- ``0 < multiplier < 1``: the update with ``learning_rate * multiplier``, and decoupled
  weight decay (AdamW's) at that learning rate too, as PyTorch's parameter groups do it.
  With the full rate, the decay outruns the small updates: AdamW's weight decay 0.5 at
  1e-3 shrank every weight of EfficientNet-Lite0's ImageNet encoder (encoder multiplier
  0.1) by 16 % in 8 CamVid epochs, and its held-out mean IoU fell while training's rose;
- ``multiplier`` 0: no update at all: the variable, its optimizer slots (Adam's moments)
  and its weight decay are left as they are, so a frozen encoder does not move.

:class:`Adam`, :class:`AdamW` and :class:`SGD` are Keras' optimizers with this added
(:class:`LearningRateMultipliers`); without multipliers they are Keras' exactly. The
multipliers are runtime state (``FreezeEncoder`` sets them at every start of training),
not part of the optimizer's config.

Example:
    >>> import keras
    >>> optimizer = make_optimizer("adam", 1e-3)
    >>> kernel = keras.Variable([[1.0]])
    >>> optimizer.build([kernel])
    >>> optimizer.set_learning_rate_multiplier([kernel], 0.0)
    >>> optimizer.apply([keras.ops.ones((1, 1))], [kernel])
    >>> float(kernel.numpy()[0, 0])
    1.0
"""

from __future__ import annotations

import keras
from keras import ops

#: Momentum of "sgd" (the chapter's recipes and DeepLab's).
SGD_MOMENTUM = 0.9


class LearningRateMultipliers:
    """Mixin for a Keras optimizer: scales each variable's learning rate by its multiplier.

    It hooks ``update_step`` (called per variable by every backend's optimizer) and
    ``_use_weight_decay``; put it before the Keras optimizer class in the bases.
    """

    def set_learning_rate_multiplier(self, variables, multiplier: float) -> None:
        """Use ``learning_rate * multiplier`` for ``variables`` from the next traced step on.

        The multiplier is read when the train step is traced: after changing it during
        ``fit``, rebuild the step with ``model.make_train_function(force=True)``.

        Raises:
            ValueError: a multiplier that is not a finite number >= 0.
        """
        multiplier = float(multiplier)
        if not 0.0 <= multiplier < float("inf"):
            raise ValueError(
                f"Expected a learning-rate multiplier >= 0 (0 freezes), received {multiplier!r}."
            )
        if not hasattr(self, "_learning_rate_multipliers"):
            self._learning_rate_multipliers = {}
        for variable in variables:
            self._learning_rate_multipliers[self._var_key(variable)] = multiplier

    def learning_rate_multiplier(self, variable) -> float:
        """The multiplier of ``variable`` (1.0 unless set)."""
        return getattr(self, "_learning_rate_multipliers", {}).get(self._var_key(variable), 1.0)

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self.learning_rate_multiplier(variable)
        if multiplier == 0.0:
            return None
        if multiplier != 1.0:
            learning_rate = learning_rate * multiplier
            if self.weight_decay is not None and super()._use_weight_decay(variable):
                # Keras' own decay (at the full rate) skips these variables: see below.
                decay = ops.cast(self.weight_decay, variable.dtype) * ops.cast(
                    learning_rate, variable.dtype)
                variable.assign(variable - variable * decay)
        return super().update_step(gradient, variable, learning_rate)

    def _use_weight_decay(self, variable):
        # Keras decays with the full learning rate before the update steps: only the
        # variables with multiplier 1. A frozen one does not decay; the others decay in
        # update_step, at their own rate.
        if self.learning_rate_multiplier(variable) != 1.0:
            return False
        return super()._use_weight_decay(variable)


class FusedAdamStep:
    """Mixin for Keras' Adam and AdamW: one fused TensorFlow op per variable and step.

    Keras' Adam updates each variable with about a dozen small ops (moments, bias
    correction, division, assignment). On TensorFlow, ``ResourceApplyAdam`` computes the
    same update (``m += (g - m)(1 - b1)``; ``v += (g^2 - v)(1 - b2)``;
    ``var -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``, Keras' formula) in one
    kernel. Used on the TensorFlow backend without a distribution strategy and without
    amsgrad; everywhere else this is Keras' own ``update_step``. AdamW's decoupled weight
    decay is applied by Keras before the update step, so it is unchanged.
    """

    def update_step(self, gradient, variable, learning_rate):
        if (keras.backend.backend() != "tensorflow" or self.amsgrad
                or not hasattr(variable, "handle")):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        if tf.distribute.has_strategy():
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle,
            v=self._velocities[index].handle, beta1_power=ops.power(beta_1, step),
            beta2_power=ops.power(beta_2, step), lr=ops.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(gradient, dtype), use_locking=False, use_nesterov=False)
        return None


@keras.saving.register_keras_serializable(package="pixelwise")
class Adam(LearningRateMultipliers, FusedAdamStep, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with per-variable learning-rate multipliers, fused on TF."""


@keras.saving.register_keras_serializable(package="pixelwise")
class AdamW(LearningRateMultipliers, FusedAdamStep, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` with per-variable learning-rate multipliers, fused on TF."""


@keras.saving.register_keras_serializable(package="pixelwise")
class SGD(LearningRateMultipliers, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` with per-variable learning-rate multipliers."""


def learning_rate_schedule(learning_rate: float, schedule: str, total_steps: int):
    """The learning rate ``--lr-schedule schedule`` means, stepped per batch.

    Args:
        learning_rate: The initial rate.
        schedule: "cosine" (cosine decay to 0), "poly" (power 0.9 to 0) over
            ``total_steps``; anything else: the constant ``learning_rate``.
        total_steps: Training steps in all (epochs x steps per epoch; at least 1 is used).
    """
    total = max(1, int(total_steps))
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total)
    if schedule == "poly":
        return keras.optimizers.schedules.PolynomialDecay(
            learning_rate, decay_steps=total, end_learning_rate=0.0, power=0.9
        )
    return learning_rate


def make_optimizer(name: str, learning_rate, weight_decay: float = 0.0):
    """The optimizer ``--optimizer name`` means.

    Args:
        name: "adam" (Keras' defaults), "adamw" (decoupled ``weight_decay``) or "sgd"
            (momentum :data:`SGD_MOMENTUM`).
        learning_rate: float or a ``keras.optimizers.schedules`` schedule.
        weight_decay: float, default 0.0. Used by "adamw" only.

    Raises:
        ValueError: an unknown name.
    """
    if name == "adamw":
        return AdamW(learning_rate, weight_decay=weight_decay)
    if name == "sgd":
        return SGD(learning_rate, momentum=SGD_MOMENTUM)
    if name == "adam":
        return Adam(learning_rate)
    raise ValueError(f"Expected optimizer 'adam', 'adamw' or 'sgd', received {name!r}.")
