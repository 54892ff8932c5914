"""The ``isbi2012_membranes`` builder (ISBI 2012 EM membrane segmentation)."""
