"""Drawn results stay readable: box labels never cover each other, the confusion matrix's
title and labels lie inside its figure. Checked on real drawings: PIL's text extents and
matplotlib's rendered window extents."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from pixelwise.class_sets import ClassSet
from pixelwise.inference.drawing import draw_boxes, place_labels
from pixelwise.evaluation.confusion_plot import confusion_figure
from pixelwise.inference.boxes import Box

CLASSES = ClassSet(name="tiny", class_names=("background", "person", "bicycle", "car"),
                   palette=((0, 0, 0), (255, 0, 0), (0, 200, 0), (0, 0, 255)))


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_labels_of_nearby_boxes_on_a_small_image_do_not_overlap():
    # Four boxes close together on a 64x128 image: the old placement put every label above
    # its box's top left corner, three of them over each other.
    boxes = [(4, 20, 30, 40), (8, 22, 40, 44), (30, 18, 60, 38), (6, 50, 28, 62)]
    sizes = [(58, 13), (39, 11), (57, 13), (58, 13)]  # PIL's default font, padded
    places = place_labels(boxes, sizes, 128, 64)
    for i, (x0, y0, x1, y1) in enumerate(places):
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 64 and (x1 - x0, y1 - y0) == sizes[i]
        for other in places[:i]:
            assert not _overlap(places[i], other), (places[i], other)
    assert places[0] == (4, 7, 62, 20)  # the first label goes right above its box


def test_drawn_labels_of_several_boxes_are_separate_patches():
    image = np.full((64, 96, 3), 128, np.uint8)
    boxes = [Box(c, CLASSES.class_names[c], box, 100, 0.9)
             for c, box in ((1, (4, 20, 30, 40)), (2, (8, 22, 40, 44)), (3, (30, 18, 60, 38)))]
    drawn = draw_boxes(image, boxes, CLASSES)
    # Each label's background is its class colour; three labels, three colours, all visible.
    for class_id in (1, 2, 3):
        colour = np.array(CLASSES.palette[class_id])
        assert np.sum(np.all(drawn == colour, axis=-1)) > 200, CLASSES.class_names[class_id]


def test_a_label_wider_than_the_image_stays_at_its_left_edge():
    [(x0, y0, x1, y1)] = place_labels([(5, 5, 10, 10)], [(40, 12)], 30, 30)
    assert (x0, y1 - y0) == (0, 12)


@pytest.mark.parametrize("num_classes", [2, 5, 21, 40])
def test_confusion_title_and_labels_lie_inside_the_figure(num_classes):
    # Long names push the axes right; the one-line title then ran past the figure's edge
    # (x 110..541 of 500 px with three classes).
    names = [f"a long class name {i}" for i in range(num_classes)]
    confusion = np.random.default_rng(0).integers(0, 100, (num_classes, num_classes))
    figure = confusion_figure(confusion, names)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    inside = figure.bbox
    for artist in (figure.axes[0].title, *figure.axes[0].get_xticklabels(),
                   *figure.axes[0].get_yticklabels()):
        box = artist.get_window_extent(renderer)
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1, (artist.get_text(), box, inside)
        assert inside.y0 <= box.y0 and box.y1 <= inside.y1, (artist.get_text(), box, inside)
    for axes in figure.axes:  # the colour bar's ticks too
        box = axes.get_tightbbox(renderer)
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and box.y1 <= inside.y1
