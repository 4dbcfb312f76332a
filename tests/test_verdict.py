"""The comparison's verdict at matched size, on small hand-made results: each searched network meets
every hand-designed network of no more parameters with the report's own tests, and its place on the
Pareto front of accuracy against parameters is said."""
from __future__ import annotations

import statistics

from nas.compare.stats import compare_pairs, pareto_front
from nas.compare.verdict import matched_size, summary_line

PARAMS = {"s": 100, "s_big": 150, "s_tiny": 10, "h_small": 50, "h_same": 100, "h_big": 200}
ACCURACY = {  # per seed: s clearly beats h_small, ties h_same; s_big clearly loses to h_same
    "s": [0.90, 0.91, 0.92], "s_big": [0.800, 0.801, 0.802], "s_tiny": [0.5, 0.52, 0.51],
    "h_small": [0.70, 0.71, 0.72], "h_same": [0.905, 0.915, 0.90], "h_big": [0.99, 0.985, 0.995],
}
SEARCHED, HAND = ["s", "s_big", "s_tiny"], ["h_small", "h_same", "h_big"]


def verdicts(flip: bool = False):
    rows = {name: {"params": PARAMS[name], "test_mean": statistics.fmean(values), "n": len(values)}
            for name, values in ACCURACY.items()}
    pairs = [(s, h) for s in SEARCHED for h in HAND]
    tests = {(t.a, t.b): t for t in compare_pairs(ACCURACY, [(h, s) for s, h in pairs] if flip else pairs)}
    front = pareto_front({name: (row["params"], row["test_mean"]) for name, row in rows.items()})
    return {v.label: v for v in matched_size(SEARCHED, HAND, rows, tests, front)}


def test_each_searched_network_meets_only_the_hand_designed_ones_of_no_more_parameters():
    v = verdicts()
    assert [r.label for r in v["s"].rivals] == ["h_small", "h_same"]  # not h_big: twice the parameters
    assert [r.outcome for r in v["s"].rivals] == ["beats", "tie"]
    assert [(r.label, r.outcome) for r in v["s_big"].rivals] == [("h_small", "beats"), ("h_same", "loses")]
    assert v["s_tiny"].rivals == () and v["s_tiny"].smallest_hand == ("h_small", 50)


def test_the_pareto_place_and_what_dominates_an_off_front_network():
    v = verdicts()
    assert v["s"].on_front and v["s_tiny"].on_front
    assert not v["s_big"].on_front and set(v["s_big"].dominated_by) == {"s", "h_same"}


def test_the_leading_line_says_it_all_in_one_line():
    line = summary_line(list(verdicts().values()))
    assert line.startswith("At matched size: ") and "\n" not in line
    s, s_big, s_tiny = line.removeprefix("At matched size: ").split(". ")
    assert s.startswith("**s** (100 parameters) beats **h_small** (+20.00 pp); cannot be told apart from **h_same**")
    assert "the 2 hand-designed networks of no more parameters" in s and "h_big" not in s
    assert s.endswith("it is on the Pareto front of accuracy against parameters")
    assert "loses to **h_same** (-10.57 pp)" in s_big and "off the Pareto front" in s_big
    assert "no hand-designed network of no more parameters to meet (the smallest, **h_small**, has 50)" in s_tiny


def test_a_test_stored_the_other_way_round_is_turned_to_searched_minus_hand():
    straight, flipped = verdicts(), verdicts(flip=True)
    for name in SEARCHED:
        assert [(r.label, r.outcome, round(r.test.difference, 9)) for r in straight[name].rivals] == \
               [(r.label, r.outcome, round(r.test.difference, 9)) for r in flipped[name].rivals]


def test_no_searched_network_no_line():
    assert summary_line([]) == ""

