"""Hostile genome files fail fast: alias bombs, absurd nesting, huge repeats, depths and widths, numbers
that are not channel counts. Each ends in one GenomeError line naming the field, through the Python API and
through `nas build FILE`; never a hang (the timeouts are hang guards, far above the time taken), a
traceback or gigabytes of memory (the alias bomb's peak is measured)."""
from __future__ import annotations

import resource

import pytest

from nas.cli import main, parser
from nas.errors import GenomeError
from nas.genome import Genome
from nas.limits import MAX_TEXT

BASE = """name: hostile
input: {channels: 3, size: 32}
stem: [{op: conv, out: 8}]
stages: [{cell: basic, out: 8, repeats: 1}]
head: [{op: global_avgpool}]
"""


def _bomb(levels: int = 9) -> str:
    """The "billion laughs": each anchor lists the previous one nine times (9**9 leaves once expanded)."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + BASE.replace("{op: conv, out: 8}", f"{{op: conv, out: 8, kernel: *l{levels - 1}}}")


CASES = {
    # name: (text, the field the error names, words of the message)
    "alias bomb": (_bomb(), "l", "more than 200,000 values"),
    "self-referencing alias": (BASE.replace("repeats: 1}", "repeats: 1, params: &r {x: [*r]}}"),
                               "stages[0].params.x[0]", "levels deep"),
    "flow nesting past the parser": (BASE.replace("repeats: 1}", "params: {x: " + "[" * 100_000 + "]" * 100_000 + "}}"),
                                     "", "nesting depth"),
    "nesting within the parser": (BASE.replace("repeats: 1}", "params: {x: " + "[" * 500 + "]" * 500 + "}}"),
                                  "stages[0].params.x[0][0]", "levels deep"),
    "repeats 10**12": (BASE.replace("repeats: 1", "repeats: 1000000000000"), "stages[0].repeats", "out of range"),
    "repeats past the stage bound": (BASE.replace("repeats: 1", "repeats: 5000"), "stages[0].repeats", "at most 1,000"),
    "stage out 10**9": (BASE.replace("out: 8, repeats", "out: 1000000000, repeats"), "stages[0].out", "out of range"),
    "node out 10**9": (BASE.replace("{op: conv, out: 8}", "{op: conv, out: 1000000000}"), "stem[0].out", "out of range"),
    "dense block of 10**6 layers": (BASE.replace("{cell: basic, out: 8, repeats: 1}",
                                                 "{cell: dense, params: {layers: 1000000, growth: 4}}"),
                                    "stages[0]", "a cell may have at most"),
    "fractal of 40 columns": (BASE.replace("{cell: basic, out: 8, repeats: 1}", "{cell: fractal, out: 8, params: {columns: 40}}"),
                              "stages[0]", "a cell may have at most"),
    "network too large": (BASE.replace("{cell: basic, out: 8, repeats: 1}",
                                       "{cell: dense, repeats: 1000, params: {layers: 100, growth: 1}}"),
                          "stages[0]", "network would be too large"),
    "stage out 16.0": (BASE.replace("out: 8, repeats", "out: 16.0, repeats"), "stages[0].out", "integer"),
    "stage out 0": (BASE.replace("out: 8, repeats", "out: 0, repeats"), "stages[0].out", "integer >= 1"),
    "stage out true": (BASE.replace("out: 8, repeats", "out: true, repeats"), "stages[0].out", "integer"),
    "node out 16.0": (BASE.replace("{op: conv, out: 8}", "{op: conv, out: 16.0}"), "stem[0].out", "a channel count must be >= 1 and an integer"),
    "node out 0": (BASE.replace("{op: conv, out: 8}", "{op: conv, out: 0}"), "stem[0].out", "a channel count must be >= 1 and an integer"),
    "node out true": (BASE.replace("{op: conv, out: 8}", "{op: conv, out: true}"), "stem[0].out", "a channel count must be >= 1 and an integer"),
    "explicit cell node out 2.5": (BASE.replace("{cell: basic, out: 8, repeats: 1}", "{cell: mine, out: 8}")
                                   + "cells: {mine: [{op: conv, out: 2.5}]}\n", "cells.mine[0].out", "a channel count must be >= 1 and an integer"),
    "template width 16.0": (BASE.replace("{cell: basic, out: 8, repeats: 1}", "{cell: dense, params: {layers: 2, growth: 16.0}}"),
                            "stages[0].params", "a channel count must be >= 1 and an integer"),
    "5000-digit integer": (BASE.replace("{op: conv, out: 8}", "{op: conv, out: " + "1" * 5000 + "}"), "", "too many digits"),
    "not a number": (BASE.replace("{op: conv, out: 8}", "{op: conv, out: 8}, {op: dropout, p: .nan}"), "stem[1].p", "finite"),
    "infinite expansion": (BASE.replace("{cell: basic, out: 8, repeats: 1}", "{cell: mbconv, out: 8, params: {expansion: .inf}}"),
                           "stages[0].params.expansion", "finite"),
    "binary value": (BASE.replace("{op: conv, out: 8}", "{op: conv, out: !!binary aGVsbG8=}"), "stem[0].out", "plain data"),
    "date as name": (BASE.replace("name: hostile", "name: 2020-01-01"), "name", "plain data"),
    "input size 10**9": (BASE.replace("size: 32", "size: 1000000000"), "input.size", "out of range"),
    "text too large": (BASE + "# " + "x" * MAX_TEXT + "\n", "", "too large"),
}


@pytest.fixture(scope="module", autouse=True)
def warm():
    """Import torch's meta-device code and the commands once, so that no case below pays for it."""
    Genome.from_yaml(BASE)
    parser()


@pytest.mark.timeout(10, func_only=True)  # a hang guard; setup (warm) not counted
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_genomes_fail_fast_naming_the_field(case):
    text, where, words = CASES[case]
    with pytest.raises(GenomeError) as caught:
        Genome.from_yaml(text)
    assert caught.value.where.startswith(where) and words in caught.value.message, str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.timeout(10, func_only=True)  # a hang guard; setup (warm) not counted
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_genome_files_fail_fast_in_nas_build(case, tmp_path, capsys):
    text, where, words = CASES[case]
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    code = main(["build", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"nas build: error: {path}") and err.count("\n") == 1, err
    assert f"{path}: {where}" in err and words in err and "Traceback" not in err


@pytest.mark.timeout(10, func_only=True)  # a hang guard; setup (warm) not counted
def test_the_alias_bomb_stays_small_in_memory():
    """The process's peak resident memory (Linux: KiB) grows by less than 200 MiB; expanded, the bomb needs GiBs."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(GenomeError):
        Genome.from_yaml(_bomb(10))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


@pytest.mark.timeout(10, func_only=True)  # a hang guard; setup (warm) not counted
def test_hostile_json_fails_the_same_way():
    with pytest.raises(GenomeError, match="nested too deeply|levels deep"):
        Genome.from_json('{"name": "x", "stem": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(GenomeError, match="stages\\[0\\].repeats: 1000000000000 is out of range"):
        Genome.from_json(Genome.from_yaml(BASE).to_json().replace('"cell": "basic"', '"cell": "basic", "repeats": 1000000000000'))


def test_a_search_space_file_that_is_an_alias_bomb_fails_fast_and_small(tmp_path):
    """A space file gets the genome files' bounds: the bomb ends in one short line, not gigabytes."""
    from nas.spaces import load_space
    from nas.spaces.base import SpaceError

    levels = ["&l0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"  # every key one a space file has, so only the bounds can refuse it
    path.write_text(f"kind: stages\nname: [{', '.join(levels)}]\ninput: *l8\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SpaceError, match="more than 200,000 values") as error:
        load_space(path)
    assert len(str(error.value)) < 300
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: no expansion in memory
