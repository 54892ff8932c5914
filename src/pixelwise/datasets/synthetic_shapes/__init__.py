"""The ``synthetic_shapes`` builder: drawn scenes for a first result with nothing to download."""
