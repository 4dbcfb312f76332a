"""The comparison's verdict at matched size: each searched network against every hand-designed network
of no more parameters, and its place on the Pareto front of accuracy against parameters.

A bigger network beating a smaller one says little about search; the question a search has to answer
is whether it found a network that beats hand design at the same budget. So each searched network
meets every hand-designed network with at most its parameters, with the test the report already made
for that pair (Welch's two-sided t-test over the seeds, Holm-adjusted over all the report's tests:
`nas.compare.stats.compare_pairs`), and the report leads with one line saying what came out. Pure
functions of the report's rows and tests, so that the wording is tested on small hand-made inputs.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nas.compare.stats import Comparison


@dataclass(frozen=True)
class Rival:
    """A hand-designed network of no more parameters than the searched one, and the test between them
    (difference = searched - rival; None when the report made no such test)."""

    label: str
    params: int
    test: Comparison | None

    @property
    def outcome(self) -> str:
        """"beats", "loses" (significant either way), "untestable" or "tie" (no significant difference)."""
        if self.test is None or self.test.reason:
            return "untestable"
        if self.test.significant:
            return "beats" if self.test.difference > 0 else "loses"
        return "tie"


@dataclass(frozen=True)
class MatchedVerdict:
    """One searched network at matched size."""

    label: str
    params: int
    rivals: tuple[Rival, ...]  # hand-designed networks with params <= this one's, fewest parameters first
    on_front: bool  # on the Pareto front of mean test accuracy against parameters
    dominated_by: tuple[str, ...]  # off the front: the models with no more parameters and higher accuracy
    smallest_hand: tuple[str, int] | None  # the smallest hand-designed network (when none is as small)

    def of(self, outcome: str) -> list[Rival]:
        return [r for r in self.rivals if r.outcome == outcome]


def _tested(tests: Mapping[tuple[str, str], Comparison], searched: str, hand: str) -> Comparison | None:
    """The report's test of `searched` against `hand`, oriented searched - hand."""
    test = tests.get((searched, hand))
    if test is not None:
        return test
    test = tests.get((hand, searched))
    if test is None:
        return None
    return Comparison(searched, hand, -test.difference, -test.t, test.p, test.p_adjusted, test.significant,
                      test.reason)


def matched_size(searched: Sequence[str], hand: Sequence[str], rows: Mapping[str, Mapping[str, object]],
                 tests: Mapping[tuple[str, str], Comparison], front: Sequence[str]) -> list[MatchedVerdict]:
    """The verdict of each searched model (`rows`: label -> "params", "test_mean", "n"; `tests`: (a, b) ->
    the report's Comparison; `front`: the Pareto front against parameters)."""
    def usable(label: str) -> bool:
        row = rows[label]
        return bool(row.get("params")) and int(row.get("n") or 0) > 0 and not math.isnan(float(row["test_mean"]))

    hands = sorted((h for h in hand if usable(h)), key=lambda h: (int(rows[h]["params"]), h))
    verdicts = []
    for label in searched:
        if not usable(label):
            continue
        params = int(rows[label]["params"])
        accuracy = float(rows[label]["test_mean"])
        rivals = tuple(Rival(h, int(rows[h]["params"]), _tested(tests, label, h))
                       for h in hands if int(rows[h]["params"]) <= params)
        dominated_by = tuple(other for other in rows if other != label and usable(other)
                             and int(rows[other]["params"]) <= params and float(rows[other]["test_mean"]) > accuracy)
        smallest = (hands[0], int(rows[hands[0]]["params"])) if hands and not rivals else None
        verdicts.append(MatchedVerdict(label, params, rivals, label in front, dominated_by, smallest))
    return verdicts


def _pp(rival: Rival) -> str:
    return f"{100 * rival.test.difference:+.2f} pp" if rival.test is not None else "no test"


def _p(rival: Rival) -> str:
    from nas.compare.report import p_text  # a cycle: nas.compare.report imports this module

    return "" if rival.test is None else f", Holm-adjusted p = {p_text(rival.test.p_adjusted)}"


def front_text(v: MatchedVerdict) -> str:
    if v.on_front:
        return "on the Pareto front of accuracy against parameters"
    return ("off the Pareto front of accuracy against parameters (" + ", ".join(f"**{d}**" for d in v.dominated_by)
            + " more accurate with no more parameters)") if v.dominated_by else "off the Pareto front"


def _named(rivals: Sequence[Rival]) -> str:
    return ", ".join(f"**{r.label}** ({_pp(r)})" for r in rivals)


def summary_line(verdicts: Sequence[MatchedVerdict]) -> str:
    """The report's leading line: for each searched network, which hand-designed networks of no more
    parameters it beats, cannot be told apart from, and loses to (significance at the report's level,
    Holm-adjusted), and its place on the Pareto front of accuracy against parameters."""
    parts = []
    for v in verdicts:
        if not v.rivals:
            smallest = f" (the smallest, **{v.smallest_hand[0]}**, has {v.smallest_hand[1]:,})" if v.smallest_hand else ""
            parts.append(f"**{v.label}** ({v.params:,} parameters) has no hand-designed network of no more "
                         f"parameters to meet{smallest}; it is {front_text(v)}")
            continue
        clauses = []
        for outcome, verb in (("beats", "beats"), ("tie", "cannot be told apart from"), ("loses", "loses to"),
                              ("untestable", "cannot be tested against")):
            if v.of(outcome):
                clauses.append(f"{verb} {_named(v.of(outcome))}")
        n = len(v.rivals)
        which = "the one hand-designed network" if n == 1 else f"the {n} hand-designed networks"
        parts.append(f"**{v.label}** ({v.params:,} parameters) {'; '.join(clauses)}: {which} of no more parameters; "
                     f"it is {front_text(v)}")
    if not parts:
        return ""
    return "At matched size: " + ". ".join(parts) + "."


def detail_lines(verdicts: Sequence[MatchedVerdict]) -> list[str]:
    """One line per searched network and rival: the difference and its test."""
    words = {"beats": "better, significant", "loses": "worse, significant", "tie": "not significant",
             "untestable": "not testable"}
    lines = []
    for v in verdicts:
        for r in v.rivals:
            reason = f" ({r.test.reason})" if r.test is not None and r.test.reason else ""
            lines.append(f"**{v.label}** ({v.params:,}) against **{r.label}** ({r.params:,}): {_pp(r)}, "
                         f"{words[r.outcome]}{reason}{_p(r)}.")
    return lines
