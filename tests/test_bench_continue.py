"""A table continues from its table.json alone (no run folder): the same command trains only the seeded
sample's architectures it lacks and ends with the table an uninterrupted build writes; `nas bench reseed`
retrains some with another seed and reports the agreement; bad input is one line, before any training."""
import json
import math
import statistics

import pytest

from nas.cli import main
from nas.evaluate.bench_listed import Keys, merged
from nas.evaluate.correlate import judge
from nas.evaluate.table import Entry, Table
from tests.tiny_spaces import TINY_STAGES

SAME = ("fingerprint", "genome", "sample", "val_accuracy", "test_accuracy", "params", "flops", "seed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "tiny.yaml"
    path.write_text(TINY_STAGES)
    return path


def build_args(tiny, out, archs=3):
    return ["bench", "build", str(tiny), "--dataset", "digits", "--train-limit", "150", "--archs", str(archs),
            "--epochs", "1", "--seed", "0", "--concurrent", "2", "--out", str(out), "--quiet"]


def test_a_table_without_its_run_folder_continues_to_the_table_of_an_uninterrupted_build(
        tiny, tmp_path, ray_session, capsys):
    whole_dir, part_dir = tmp_path / "whole", tmp_path / "part"
    assert main(build_args(tiny, whole_dir)) == 0  # uninterrupted
    whole = Table.load(whole_dir)
    assert len(whole) == 3 and whole.meta["complete"] is True
    cost = whole.meta["cost"]
    assert cost["cpu_s"] == pytest.approx(sum(e.cpu_s for e in whole.entries), abs=0.1) and cost["cpu_s"] > 0
    assert [s["trained"] for s in cost["sessions"]] == [3] and cost["sessions"][0]["wall_s"] > 0

    # what a build stopped after two architectures leaves, its run folder gone: the first and the third of the
    # sample (trials finish out of order) in table.json, and a damaged run folder (no search.json, no experiment)
    part_dir.mkdir()
    kept = [whole.entries[0], whole.entries[2]]
    Table({**whole.meta, "complete": False, "archs": 2, "cost": {}}, kept).save(part_dir)
    (part_dir / "run").mkdir()
    (part_dir / "run" / "trials.csv").write_text("index\n")
    capsys.readouterr()
    assert main(build_args(tiny, part_dir)) == 0
    out = capsys.readouterr().out
    assert "table has 2 of 3; training 1" in out and "set aside as" in out
    assert (part_dir / "run.damaged" / "trials.csv").is_file()
    continued = Table.load(part_dir)
    assert continued.meta["complete"] is True
    for a, b in zip(continued.entries, whole.entries, strict=True):  # the same architectures, order, training
        assert {k: getattr(a, k) for k in SAME} == {k: getattr(b, k) for k in SAME}
    assert [continued.entries[0], continued.entries[2]] == kept  # kept as they were, not retrained
    assert [s["trained"] for s in continued.meta["cost"]["sessions"]] == [1]

    assert main(build_args(tiny, part_dir)) == 0  # again: nothing to train
    assert "table has 3 of 3: complete, nothing to train" in capsys.readouterr().out
    assert Table.load(part_dir).entries == continued.entries

    # the seed noise: the first 3 again with seed 1, beside the table
    args = ["bench", "reseed", str(whole_dir), "--archs", "3", "--seed", "1", "--concurrent", "2", "--bootstrap",
            "50", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "table has 0 of 3; training 3" in out and "seed 0 vs seed 1 over 3 architectures" in out
    second = Table.load(whole_dir / "seed1.json")
    assert [e.fingerprint for e in second.entries] == [e.fingerprint for e in whole.entries]
    assert second.meta["seed"] == 1 and second.meta["recipe"]["seed"] == 1 and second.meta["complete"] is True
    assert second.meta["data"] == whole.meta["data"]  # the same split
    found = second.meta["agreement"]["val_accuracy"]
    first, again = [e.final_val_accuracy for e in whole.entries], [e.final_val_accuracy for e in second.entries]
    row = judge({"x": again}, first, boots=50, seed=0)[0]
    assert found["kendall_tau"] == (None if math.isnan(row.kendall_tau) else round(row.kendall_tau, 4))
    noise = statistics.stdev(b - a for a, b in zip(first, again)) / math.sqrt(2)
    assert found["seed_noise_sd"] == pytest.approx(noise, abs=1e-4)
    assert found["spread_sd"] == pytest.approx(statistics.stdev(first), abs=1e-4)
    assert main([*args[:-1], "--json"]) == 0  # done: nothing trained, the same report
    shown = json.loads(capsys.readouterr().out)
    assert shown["val_accuracy"] == found and shown["complete"] is True


def tiny_table(tiny, archs=4, **meta):
    entries = [Entry(f"{i:064x}", {"name": f"g{i}"}, {"i": i}, [0.5 + i / 100], 0.5, 10, 10, 1.0, 0.0, 1.0, 0)
               for i in range(archs)]
    return Table({"space": str(tiny), "dataset": "digits", "data": {"val_fraction": 0.1, "train_limit": 150,
                                                                     "seed": 0},
                  "epochs": 1, "seed": 0, "requested": 9, "complete": False, "recipe": {"epochs": 1}, **meta},
                 entries)


@pytest.mark.parametrize("extra, said", [
    (["--archs", "5"], "--archs 5: the table"),
    (["--archs", "2"], "at least 3 architectures"),
    (["--archs", "3", "--seed", "0"], "--seed 0: the table was trained with seed 0"),
])
def test_reseed_refuses_bad_input_in_one_line(tiny, tmp_path, capsys, extra, said):
    tiny_table(tiny).save(tmp_path)
    assert main(["bench", "reseed", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1 and not (tmp_path / "seed1.json").exists()


def test_reseed_of_a_missing_table_and_a_build_over_another_builds_table_are_one_line(tiny, tmp_path, capsys):
    assert main(["bench", "reseed", str(tmp_path / "none"), "--archs", "3"]) == 2
    assert "no such table" in capsys.readouterr().err
    tiny_table(tiny, epochs=2).save(tmp_path)
    assert main(build_args(tiny, tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a table built with other settings (epochs, recipe)" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_merging_keeps_the_samples_order_and_the_later_tables_entries():
    wanted = [{"fingerprint": f"{i:064x}", "genome": {"name": f"g{i}"}, "sample": {"i": i}} for i in range(4)]
    old = Table({}, [Entry(f"{i:064x}", {"name": f"g{i}"}, {"i": i}, [0.1], None, 0, 0, 1.0, 0.0, 1.0, 0)
                     for i in (3, 1)])
    new = Table({}, [Entry(f"{i:064x}", {"name": f"g{i}"}, {"i": i}, [0.2], None, 0, 0, 1.0, 0.0, 1.0, 0)
                     for i in (0, 1)])
    assert [(e.sample["i"], e.val_accuracy[0]) for e in merged(wanted, old, new)] == [(0, 0.2), (1, 0.2), (3, 0.1)]
    assert Keys(wanted).index(f"{9:064x}", {"name": "g9"}) is None
