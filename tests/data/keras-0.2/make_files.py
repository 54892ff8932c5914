"""Wrote tests/data/keras-0.2/unet.keras with pixelwise at 254843d, before the layout move (issue 21).

Kept to show how the file was made; rerunning it with a later pixelwise makes a new file, not an old one.
"""
import numpy as np, keras, pixelwise
from pixelwise import models, losses, metrics, optimizers
out = "tests/data/keras-0.2"
rng = np.random.default_rng(0)
def save(model, name, n):
    from pixelwise.class_sets import ClassSet
    cs = ClassSet(name="legacy", class_names=tuple(f"c{i}" for i in range(n)), palette=tuple((i*80, 0, 0) for i in range(n)))
    model.compile(optimizer=optimizers.make_optimizer("adamw", 1e-3, 0.01),
                  loss=losses.segmentation_loss(cs, "ce+dice"), metrics=metrics.segmentation_metrics(cs))
    x = rng.random((2, 64, 64, 3), dtype=np.float32); y = rng.integers(0, n, (2, 64, 64))
    model.fit(x, y, epochs=1, verbose=0)
    model.save(f"{out}/{name}.keras")
    np.save(f"{out}/{name}-input.npy", x[:1]); np.save(f"{out}/{name}-output.npy", model.predict(x[:1], verbose=0))
save(models.build("unet", input_size=(64, 64, 3), num_classes=3, base_filters=4, batch_norm=True, dropout_rate=0.1), "unet", 3)
