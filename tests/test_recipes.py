"""Final-training recipes: each piece (drop-path on cell branches, auxiliary head, EMA, gradient clipping,
warm-up, decay of norms and biases) does what it should; recipe files load, validate and are overridden
by options; `nas recipes`; `nas train` resumes after SIGKILL or Ctrl-C and ends as an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import nas
from nas import baselines
from nas.cli import main, parser
from nas.cli.common import recipe_from_args
from nas.compiler import build
from nas.darts import genotype, network
from nas.errors import GenomeError
from nas.genome import Genome
from nas.train import loop
from nas.train.checkpointing import TrainingState
from nas.train.datasets import load_dataset
from nas.train.recipe import RECIPE_FIELDS, RecipeError, load_recipe, parse_recipe, recipe_names
from nas.train.regularizers import Extras, branch_modules, drop_path_probability
from nas.train.settings import SettingsError, TrainSettings

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "name": "tiny",
    "input": {"channels": 1, "size": 8},
    "num_classes": 10,
    "stem": [{"op": "conv", "out": 8, "kernel": 3}],
    "stages": [{"cell": "basic", "out": 8}, {"cell": "basic", "out": 16, "stride": 2}],
    "head": [{"op": "global_avgpool"}],
}


def small_darts(aux: bool = True) -> Genome:
    """A 3-cell DARTS-V2 network for 8x8 digits; the aux head after the second reduction cell (DARTS's place)."""
    return network(genotype(baselines.get("darts_v2")), "small", channels=4, layers=3, input_channels=1,
                   input_size=8, auxiliary=aux)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small networks train faster on one thread (and far faster on a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def few_digits():
    return load_dataset("digits", train_limit=200)


def extras_for(genome: Genome, **fields):
    settings = TrainSettings(**fields)
    torch.manual_seed(0)
    model = build(genome, num_classes=10, in_channels=1, input_size=8)
    return model, settings, Extras.create(model, genome, settings, 10, 1, 8)


# ----- the genome's mark -----
def test_a_stage_marks_the_aux_head_validated_hashed_and_round_tripping():
    plain, marked = small_darts(aux=False), small_darts()
    assert marked.stages[2].aux and plain != marked and plain.fingerprint() != marked.fingerprint()
    assert Genome.from_yaml(marked.to_yaml()) == marked
    assert Genome.from_yaml(marked.to_yaml()).fingerprint() == marked.fingerprint()
    assert "aux" not in yaml.safe_load(plain.to_yaml())["stages"][2]  # unmarked genomes are written as before
    full = network(genotype(baselines.get("darts_v2")), "darts", auxiliary=True)  # 20 cells, DARTS's place
    assert [i for i, stage in enumerate(full.stages) if stage.aux] == [4] and full.stages[4].stride == 2
    assert full.stages[4].cell.startswith("reduce") and genotype(full) == genotype(baselines.get("darts_v2"))
    spec = marked.to_dict()
    spec["stages"][0]["aux"] = True
    with pytest.raises(GenomeError, match=r"stages\[2\]\.aux: only one stage"):
        Genome.from_dict(spec)
    spec["stages"][0]["aux"] = "yes"
    with pytest.raises(GenomeError, match=r"stages\[0\]\.aux: must be true or false"):
        Genome.from_dict(spec)
    # the built network is the same with or without the mark: the head exists only in training
    assert list(build(plain).state_dict()) == list(build(marked).state_dict())


# ----- the pieces -----
def test_drop_path_schedule_is_linear_and_off_in_evaluation():
    assert [drop_path_probability(0.2, e, 4) for e in (1, 2, 3, 4)] == pytest.approx([0.0, 0.05, 0.1, 0.15])
    model, settings, extras = extras_for(small_darts(), drop_path=0.3, epochs=2)
    # DARTS's branches: the normal cell's 5 sep convs and 1 dil conv, 5 max pools per reduction cell; no skips
    assert len(branch_modules(model)) == 16 == len(extras.drop.branches)
    x = torch.randn(6, 1, 8, 8)
    clean = build(small_darts(), num_classes=10, in_channels=1, input_size=8)
    clean.load_state_dict(model.state_dict())
    extras.start_epoch(1)
    assert extras.drop.p == 0.0
    extras.start_epoch(2)
    assert extras.drop.p == pytest.approx(0.15)
    model.eval(), clean.eval()
    assert torch.equal(model(x), clean(x))  # no drop in evaluation
    model.train(), clean.train()
    torch.manual_seed(1)
    assert not torch.allclose(model(x), clean(x))  # dropped branches in training
    extras.remove()
    torch.manual_seed(1)
    assert torch.allclose(model(x), clean(x))  # hooks gone: the network as built


def test_aux_head_adds_a_loss_in_training_only_and_is_not_saved(few_digits, tmp_path):
    model, settings, extras = extras_for(small_darts(), aux_weight=0.4)
    assert extras.aux is not None and extras.aux.stage == 2
    criterion = torch.nn.CrossEntropyLoss()
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    model.train()
    loss = criterion(model(x), y)
    total = extras.loss(loss, criterion, y)
    assert total.item() > loss.item()
    model.eval()
    loss = criterion(model(x), y)
    assert extras.loss(loss, criterion, y) is loss  # nothing captured in evaluation
    head = set(map(id, extras.aux.head.parameters()))
    assert head and head <= {id(p) for p in extras.trained().parameters()}  # the optimizer trains the head
    assert Extras.create(model, small_darts(aux=False), settings, 10, 1, 8).aux is None  # no mark, no head

    result = nas.fit(small_darts(), few_digits, epochs=1, aux_weight=0.4, batch_size=50, out=tmp_path / "out")
    saved = torch.load(tmp_path / "out" / "weights.pt", weights_only=True)
    assert list(saved) == list(build(small_darts(), num_classes=10, in_channels=1, input_size=8).state_dict())
    record = json.loads((tmp_path / "out" / "train.json").read_text())
    assert record["applied"]["aux_stage"] == 2 and record["settings"]["aux_weight"] == 0.4
    assert not (tmp_path / "out" / "state.pt").exists()  # finished: nothing to resume
    assert result.model.training is False


def test_ema_weights_differ_from_the_raw_ones_and_are_evaluated_and_saved(few_digits, tmp_path):
    model, settings, extras = extras_for(small_darts(aux=False), ema_decay=0.9, batch_size=50)
    optimizer = loop.make_optimizer(extras.trained(), settings)
    scheduler = loop.make_scheduler(optimizer, settings, loop.steps_per_epoch(len(few_digits.train), 50))
    precision = loop.Precision.choose("off", torch.device("cpu"))
    loop.train_epoch(model, few_digits, few_digits.train, optimizer, scheduler, precision.scaler(), precision,
                     settings, torch.Generator().manual_seed(0), 1, extras=extras)
    averaged, raw = extras.evaluated().state_dict(), model.state_dict()
    assert list(averaged) == list(raw) and extras.evaluated() is not model
    assert any(not torch.equal(averaged[k], raw[k]) for k in raw if raw[k].is_floating_point())

    result = nas.fit(small_darts(aux=False), few_digits, epochs=2, ema_decay=0.9, batch_size=50,
                       out=tmp_path / "ema")
    saved = torch.load(tmp_path / "ema" / "weights.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in result.model.state_dict().items())
    rebuilt = build(result.genome)
    rebuilt.load_state_dict(saved)
    assert loop.evaluate(rebuilt, few_digits, few_digits.test, precision, 1024) == result.test_accuracy
    assert loop.evaluate(rebuilt, few_digits, few_digits.val, precision, 1024) == result.history[-1]["val_accuracy"]
    assert json.loads((tmp_path / "ema" / "train.json").read_text())["applied"]["ema"] is True


def test_gradient_clipping_bounds_the_norm():
    model, settings, extras = extras_for(small_darts(aux=False), grad_clip=0.01)
    optimizer = loop.make_optimizer(extras.trained(), settings)
    torch.nn.CrossEntropyLoss()(model(torch.randn(8, 1, 8, 8)), torch.randint(0, 10, (8,))).backward()
    before = extras.before_step(optimizer, torch.amp.GradScaler("cpu", enabled=False))
    after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))
    assert before > 0.01 and float(after) <= 0.01 * 1.0001


def test_warm_up_is_linear_then_the_schedule_and_norm_decay_is_an_option():
    settings = TrainSettings(epochs=3, warmup_epochs=1, lr=0.1)
    optimizer = loop.make_optimizer(torch.nn.Linear(2, 2), settings)
    scheduler = loop.make_scheduler(optimizer, settings, steps_per_epoch=4)
    rates = []
    for _ in range(12):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step(), scheduler.step()
    assert rates[:5] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])  # warm-up, then cosine from the top
    assert rates[5:] == sorted(rates[5:], reverse=True) and rates[-1] < 0.01
    plain = loop.make_optimizer(torch.nn.Linear(2, 2), TrainSettings())
    assert [g["weight_decay"] for g in plain.param_groups] == [5e-4, 0.0]
    every = loop.make_optimizer(torch.nn.Linear(2, 2), TrainSettings(decay_norm_bias=True))
    assert [(g["weight_decay"], len(g["params"])) for g in every.param_groups] == [(5e-4, 2)]
    for bad in ({"drop_path": 1.0}, {"grad_clip": 0}, {"ema_decay": 1.0}, {"warmup_epochs": -1},
                {"aux_weight": -0.1}, {"nesterov": "yes"}, {"momentum": 1.5}):
        with pytest.raises(SettingsError):
            TrainSettings(**bad)
    with pytest.raises(SettingsError, match="did you mean 'drop_path'"):
        TrainSettings.from_dict({"droppath": 0.1})


# ----- recipe files -----
def test_shipped_recipes_load_and_darts_is_the_papers():
    assert {"darts", "fast", "search"} <= set(recipe_names())
    darts = load_recipe("darts").train_settings()
    assert (darts.epochs, darts.batch_size, darts.lr, darts.momentum, darts.decay, darts.drop_path, darts.aux_weight,
            darts.grad_clip, darts.augment) == (600, 96, 0.025, 0.9, 3e-4, 0.2, 0.4, 5, "crop=4,flip,cutout=16")
    search = load_recipe("search").train_settings()
    assert search == TrainSettings(lr=0.05, weight_decay=5e-4)  # today's trial defaults, written out
    assert search.learning_rate == TrainSettings().learning_rate and search.decay == TrainSettings().decay


@pytest.mark.parametrize("text, message", [
    ("epohcs: 3\n", "unknown setting 'epohcs'.*did you mean 'epochs'"),
    ("drop_path: 2\n", "drop_path must be in"),
    ("- 1\n- 2\n", "a recipe is a mapping"),
    ("lr: [1\n", "malformed YAML"),
    ("seed: 3\n", "unknown setting 'seed'"),
    ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n", "more than"),
])
def test_a_bad_recipe_file_is_one_line(text, message, tmp_path, capsys):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(text, "bad.yaml")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code = main(["train", "resnet20", "--recipe", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(path) in err
    assert not (tmp_path / "out").exists()


def test_options_written_on_the_command_line_override_the_recipe(tmp_path):
    def settings(*argv):
        args = parser(["train", *argv]).parse_args(["train", *argv])
        args.argv = ["train", *argv]
        return TrainSettings.from_dict({"epochs": args.epochs, "seed": args.seed, **recipe_from_args(args)})

    darts = settings("resnet20", "--recipe", "darts")
    assert (darts.epochs, darts.batch_size, darts.lr, darts.drop_path) == (600, 96, 0.025, 0.2)
    mine = settings("resnet20", "--recipe", "darts", "--epochs", "2", "--lr", "0.1", "--drop-path", "0",
                    "--nesterov", "true")
    assert (mine.epochs, mine.batch_size, mine.lr, mine.drop_path, mine.nesterov) == (2, 96, 0.1, 0.0, True)
    assert settings("resnet20", "--recipe", "darts", "--batch-size", "32").batch_size == 32  # the default, written
    assert settings("resnet20").epochs == 10 and settings("resnet20").drop_path == 0.0  # no recipe: as before
    own = tmp_path / "mine.yaml"
    own.write_text("description: mine\nepochs: 4\nema_decay: 0.99\n")
    assert (settings("resnet20", "--recipe", str(own)).epochs, settings("resnet20", "--recipe", str(own)).ema_decay) \
        == (4, 0.99)
    assert set(RECIPE_FIELDS) <= {f for f in TrainSettings().to_dict()}


def test_nas_recipes_lists_name_description_and_key_settings(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in recipe_names():
        assert name in out and load_recipe(name).description in out
    assert "600 epochs, batch 96, sgd lr 0.025" in out and "drop-path 0.2, aux 0.4, clip 5" in out
    assert main(["recipes", "darts", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["recipes"]
    assert [r["name"] for r in listed] == ["darts"] and listed[0]["settings"]["epochs"] == 600
    assert main(["recipes", "dart"]) == 2
    assert "did you mean 'darts'" in capsys.readouterr().err


# ----- resume -----
# `nas train` that SIGKILLs itself right after its first epoch's checkpoint is written: killed mid-training
# whatever the machine's load (a thread watching for the checkpoint might be scheduled only after the short
# training has ended)
KILLED_AFTER_FIRST_CHECKPOINT = """
import os, signal, sys
from nas.train.checkpointing import TrainingState
save = TrainingState.save

def save_then_die(state, directory, epoch, metrics):
    save(state, directory, epoch, metrics)
    os.kill(os.getpid(), signal.SIGKILL)

TrainingState.save = save_then_die
from nas.cli import main
sys.exit(main(sys.argv[1:]))
"""


def nas_train_killed_after_first_epoch(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", KILLED_AFTER_FIRST_CHECKPOINT, "train", *argv], cwd=ROOT, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_training_stopped_by_sigkill_or_ctrl_c_resumes_to_the_uninterrupted_result(tmp_path, capsys, monkeypatch,
                                                                                     terminal_sigint):
    genome = tmp_path / "small.yaml"
    small_darts().save(genome)
    # every piece whose state must survive: EMA, aux head, drop-path, warm-up, clipping, augmentation
    options = [str(genome), "--dataset", "digits", "--train-limit", "200", "--epochs", "3", "--batch-size", "16",
               "--ema-decay", "0.9", "--aux-weight", "0.4", "--drop-path", "0.2", "--warmup-epochs", "1",
               "--grad-clip", "5", "--augment", "crop=1,flip", "--quiet"]
    killed = nas_train_killed_after_first_epoch(*options, "--out", str(tmp_path / "killed"))  # another process
    # Ctrl-C and the uninterrupted run in this process (one thread, as the subprocess). The SIGINT is sent
    # by the process to itself right after the first epoch's checkpoint is written, so that it always
    # arrives mid-training (a watching thread may be scheduled only after the short training has ended)
    save, sent = TrainingState.save, []

    def save_then_ctrl_c(state, directory, epoch, metrics):
        written = save(state, directory, epoch, metrics)
        if Path(directory) == tmp_path / "stopped" and not sent:
            sent.append(epoch)
            os.kill(os.getpid(), signal.SIGINT)  # handled by the command's own handler, as a Ctrl-C would be
        return written

    monkeypatch.setattr(TrainingState, "save", save_then_ctrl_c)
    # Ctrl-C as a terminal delivers it (`terminal_sigint`): a suite started in the background (`cmd &`, nohup)
    # inherits SIGINT ignored, which `nas train` rightly keeps ignored
    assert main(["train", *options, "--out", str(tmp_path / "stopped")]) == 130
    assert len(sent) == 1
    err = capsys.readouterr().err
    assert f"to continue, run: nas train --resume {tmp_path / 'stopped'}" in err and "Traceback" not in err
    assert main(["train", *options, "--out", str(tmp_path / "whole")]) == 0
    assert killed.wait(timeout=300) == -signal.SIGKILL, killed.stderr.read()[-3000:]
    load, loaded = torch.load, []  # which files the resumes read: state.pt once each

    def counted(path, *args, **kwargs):
        loaded.append(Path(path).name if isinstance(path, (str, os.PathLike)) else path)
        return load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted)
    for name in ("killed", "stopped"):
        assert not (tmp_path / name / "train.json").exists(), "finished before the signal: give it more epochs"
        capsys.readouterr()
        loaded.clear()
        assert main(["train", "--resume", str(tmp_path / name), *(["--quiet"] if name == "killed" else [])]) == 0
        assert loaded.count("state.pt") == 1, loaded
        if name == "stopped":  # shown as `nas train` shows a training: where it starts, the data, each epoch
            out = capsys.readouterr().out
            assert f"resuming {tmp_path / name} after epoch" in out and "loading digits" in out, out
            assert "epoch 3/3: train loss" in out and "epoch 1/3:" not in out, out
    expected = json.loads((tmp_path / "whole" / "train.json").read_text())
    weights = torch.load(tmp_path / "whole" / "weights.pt", weights_only=True)
    for name in ("killed", "stopped"):
        record = json.loads((tmp_path / name / "train.json").read_text())
        assert record["applied"]["resumed_after_epoch"] >= 1
        assert (record["test_accuracy"], record["val_accuracy"], record["settings"]) == \
               (expected["test_accuracy"], expected["val_accuracy"], expected["settings"])
        assert [h["val_accuracy"] for h in record["history"]] == [h["val_accuracy"] for h in expected["history"]]
        assert [h["train_loss"] for h in record["history"]] == [h["train_loss"] for h in expected["history"]]
        resumed = torch.load(tmp_path / name / "weights.pt", weights_only=True)
        assert all(torch.equal(resumed[k], weights[k]) for k in weights)
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "killed")]) == 0
    assert "finished already, not retrained" in capsys.readouterr().out


# ----- seeds -----
def test_seeds_train_as_parallel_tune_trials_each_as_nas_train_would(ray_session, few_digits, tmp_path):
    from nas.train.seeds import train_seeds

    genome = Genome.from_dict(TINY)
    settings = TrainSettings(epochs=1, batch_size=50, ema_decay=0.9)
    summary = train_seeds(genome, "digits", [0, 3], settings, tmp_path / "seeds", train_limit=200, verbose=False)
    assert [r["seed"] for r in summary["seeds"]] == [0, 3] and summary["n"] == 2
    assert json.loads((tmp_path / "seeds" / "seeds.json").read_text())["test_mean"] == summary["test_mean"]
    alone = nas.fit(genome, few_digits, settings={**settings.to_dict(), "seed": 3})  # the same, outside Tune
    assert summary["seeds"][1]["test_accuracy"] == alone.test_accuracy
    saved = torch.load(tmp_path / "seeds" / "seed3" / "weights.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in alone.model.state_dict().items())  # the averaged weights
    record = json.loads((tmp_path / "seeds" / "seed3" / "train.json").read_text())
    assert record["settings"]["seed"] == 3 and record["settings"]["ema_decay"] == 0.9 and len(record["history"]) == 1
