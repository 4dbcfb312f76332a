"""Reports people read: cell drawings each on its own at full width, scatter labels that never overlap,
legends that explain every mark, and drawings that show a cell used at several widths once."""
import itertools

import pytest
from matplotlib.figure import Figure as MplFigure
from matplotlib.text import Text

from nas import baselines
from nas.compare.document import to_html, to_markdown
from nas.compare.figures import draw_cells, place_labels, search_curves_figure, tradeoff_figure
from nas.compare.report import cells_section
from nas.draw import distinct_cells, figure
from nas.expand import expand
from nas.genome import Genome

TWO_KINDS = {  # an mbconv stage and a basic stage: two cell kinds, so two drawings
    "name": "two_kinds", "input": {"channels": 1, "size": 8}, "num_classes": 10,
    "stem": [{"op": "conv", "out": 8, "kernel": 3}],
    "stages": [{"cell": "mbconv", "out": 8, "params": {"expansion": 3.0}},
               {"cell": "basic", "out": 16, "stride": 2, "params": {"se": 0.25}}],
    "head": [{"op": "global_avgpool"}],
}


def test_every_cell_drawing_is_its_own_full_width_figure(tmp_path):
    drawn = {}
    for spec in (TWO_KINDS, {**TWO_KINDS, "name": "other", "stages": TWO_KINDS["stages"][1:]}):
        genome = Genome.from_dict(spec)
        images = draw_cells(genome, (1, 8, 8), 10, tmp_path / "figures" / "cells", genome.name)
        drawn[genome.name] = [(title, str(path.relative_to(tmp_path))) for title, path in images]
    assert [len(v) for v in drawn.values()] == [2, 1]
    blocks = cells_section(drawn, ["two_kinds"], ["other"])
    page = to_html(blocks, tmp_path, "t")
    assert page.count('<figure class="full"') == 3 == page.count("<img ")
    assert "<table" not in page  # not squeezed side by side into table cells
    assert "figure.full img { display: block; max-width: 100%" in page
    ids = [part.split('"')[0] for part in page.split('<figure class="full" id="')[1:]]
    assert len(set(ids)) == 3 and all(f'href="#{i}"' in page for i in ids)  # click: enlarged (CSS :target)
    assert "mbconv" in page and "basic" in page
    markdown = to_markdown(blocks)
    assert markdown.count("![") == 3 and "### `two_kinds` (searched)" in markdown


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_scatter_labels_never_overlap_each_other_or_the_points():
    figure_ = MplFigure(figsize=(6, 4))
    axes = figure_.add_subplot()
    # a crowded cluster: ten models with nearly the same cost and accuracy, and a few apart
    points = [(1e5 * (1 + 0.02 * i), 95 + 0.05 * i) for i in range(10)] + [(1e6, 90.0), (1.1e6, 90.2), (3e4, 99)]
    axes.scatter(*zip(*points))
    axes.set_xscale("log")
    names = [f"model_{i}_long_name" for i in range(len(points))]
    notes = place_labels(figure_, axes, points, names)
    figure_.canvas.draw()  # as saved: annotations at their final places
    renderer = figure_.canvas.get_renderer()
    boxes = [Text.get_window_extent(note, renderer) for note in notes]  # the text, not its leader line
    for a, b in itertools.combinations(boxes, 2):
        assert not _overlaps(a, b)
    for box in boxes:
        for x, y in (axes.transData.transform(p) for p in points):
            assert not (box.x0 < x < box.x1 and box.y0 < y < box.y1)
    assert [note.get_text() for note in notes] == names


def _legend_texts(figure_) -> list[str]:
    return [text.get_text() for axes in figure_.axes if axes.get_legend() for text in axes.get_legend().get_texts()]


def test_every_mark_is_in_the_legend():
    rows = [{"model": m, "kind": k, "n": 3, "test_mean": a, "test_std": 0.01, "params": p}
            for m, k, a, p in (("evo", "searched", 0.95, 1e5), ("resnet20", "baseline", 0.97, 2.7e5),
                               ("evo@resnet20", "transplant", 0.96, 2.6e5))]
    trade = tradeoff_figure(rows, "params", ["evo", "resnet20"], "parameters", "t")
    texts = _legend_texts(trade)
    assert sum("± 1 std over seeds" in t for t in texts) == 3  # the error bars of each kind
    assert any("Pareto front" in t for t in texts) and any("circled" in t for t in texts)
    axes = trade.axes[0]
    labelled = {h.get_label() for h in axes.get_legend_handles_labels()[0]}
    drawn = [c for c in axes.collections if c.get_label() and not c.get_label().startswith("_")]
    assert all(c.get_label() in labelled for c in drawn)

    records = [{"index": i, "status": "TERMINATED", "val_accuracy": 0.5 + 0.01 * i} for i in range(5)]
    curves = search_curves_figure([("evolution", records)])
    texts = _legend_texts(curves)
    assert any("each trial (faint dots)" in t for t in texts) and any("best so far" in t for t in texts)
    for collection in curves.axes[0].collections:  # every shaded/faint mark is labelled
        assert not collection.get_label().startswith("_")


@pytest.mark.parametrize("name, panels", [("resnet20", 4), ("resnet50", 5)])
def test_a_cell_used_at_several_widths_is_drawn_once(name, panels):
    genome = baselines.get(name)
    groups = distinct_cells(genome, expand(genome))
    # stem, the identity cell (every stage, every width), the strided projection cell(s), head
    assert len(groups) == panels
    identity = max(groups, key=lambda g: len(g.places))
    assert len(set(identity.widths)) >= 3 and "also at" in identity.title()
    assert len(figure(genome).axes) == 1 + panels  # the overview and one panel per distinct structure


def test_cells_that_differ_in_more_than_width_stay_apart():
    spec = {"name": "mixed", "input": {"channels": 3, "size": 32}, "num_classes": 10,
            "stem": [{"op": "conv", "out": 16, "kernel": 3}],
            "stages": [{"cell": "basic", "out": 16, "repeats": 2},
                       {"cell": "basic", "out": 32, "repeats": 2, "params": {"se": 0.25}}],
            "head": [{"op": "global_avgpool"}]}
    groups = distinct_cells(Genome.from_dict(spec), expand(Genome.from_dict(spec)))
    basic = [g for g in groups if g.kind == "basic"]
    assert len(basic) == 3  # plain identity blocks; the strided SE block; the SE identity block
