"""The final Fashion-MNIST experiment's parts (results/final-fashion-mnist): the `twoconv` baseline of the data
set's benchmark, exactly; the hand-designed genomes and searched networks it trains, each at most 100k
parameters on 1x28x28 inputs as `nas compare` fits them; the `final` recipe; run.sh's command plans them."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import torch

import nas
from nas import baselines
from nas.compare.plan import plan_models, read_run
from nas.genome import Genome
from nas.train.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
FINAL = ROOT / "results" / "final-fashion-mnist"
FASHION = ((1, 28, 28), 10)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_twoconv_is_the_benchmark_network_layer_by_layer():
    model = nas.build(baselines.get("twoconv"))
    conv1, conv2 = model.stem[0][0], model.stages[0][0][0][0]
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size, conv1.padding) == (1, 32, (5, 5), (2, 2))
    assert (conv2.in_channels, conv2.out_channels, conv2.kernel_size, conv2.padding) == (32, 64, (5, 5), (2, 2))
    assert (model.classifier.in_features, model.classifier.out_features) == (3136, 10)
    # biased convs, no batch norm, no hidden fully connected layer
    assert [count(m) for m in (conv1, conv2, model.classifier)] == [832, 51_264, 31_370]
    assert count(model) == 83_466 == nas.summarize(baselines.get("twoconv")).params
    kinds = {type(m).__name__ for m in model.modules()}
    assert not any("Norm" in k for k in kinds) and sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 1
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 2
    assert dict(nas.summarize(baselines.get("twoconv")).stage_shapes) == {
        "stem": (32, 14, 14), "stage1": (64, 7, 7), "head": (3136,)}
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def resnet20_parameters(channels: tuple[int, int, int], in_channels: int = 1, classes: int = 10) -> int:
    """A CIFAR ResNet-20 (option A shortcuts, 3x3 convs with batch norm) with these stage widths."""
    def conv_bn(c_in, c_out):
        return 9 * c_in * c_out + 2 * c_out

    total, c_in = conv_bn(in_channels, channels[0]), channels[0]
    for c_out in channels:
        total += conv_bn(c_in, c_out) + conv_bn(c_out, c_out) + 2 * 2 * conv_bn(c_out, c_out)
        c_in = c_out
    return total + channels[-1] * classes + classes


# genome file -> parameters on 1x28x28 Fashion-MNIST inputs, as `nas compare` fits it (the files keep
# `nas scale`'s CIFAR input, 3x32x32; fitting changes the first conv's input channels)
HAND = {"resnet20_w0.6.yaml": resnet20_parameters((10, 20, 38)), "mobilenet_v2_cifar_w0.15.yaml": 81_882,
        "darts_v2_w0.2_d0.3.yaml": 99_506}
SEARCHED = {"pnas-seed2": 23_442, "optuna-seed2": 81_656}


def test_every_network_of_the_final_experiment_has_at_most_100k_parameters():
    assert HAND["resnet20_w0.6.yaml"] == 98_336
    files = [str(FINAL / "genomes" / name) for name in HAND]
    runs = [read_run(ROOT / "results" / "strategies-fashion-mnist" / "runs" / name) for name in SEARCHED]
    models = plan_models(runs, ["twoconv", *files], [], *FASHION)
    params = {m.label: nas.summarize(m.genome).params for m in models}
    assert params == {**SEARCHED, "twoconv": 83_466, **{Path(f).stem: n for f, n in zip(files, HAND.values())}}
    assert max(params.values()) <= 100_000
    fitted = {(m.genome.input.channels, m.genome.input.size, m.genome.num_classes) for m in models}
    assert fitted == {(1, (28, 28), 10)}


def test_the_final_recipe_has_the_long_training_pieces():
    settings = load_recipe("final").train_settings()
    assert settings.label_smoothing == 0.1 and settings.schedule == "cosine" and settings.warmup_epochs >= 1
    assert settings.optimizer == "sgd" and settings.momentum == 0.9 and settings.nesterov
    assert not settings.decay_norm_bias and settings.decay > 0
    assert set(settings.augment.split(",")) == {"crop=2", "flip", "cutout=8"}


def run_sh_commands() -> list[list[str]]:
    """The arguments of run.sh's `nas compare` commands, in the script's order (the comparison, then `long`)."""
    lines = [line.strip() for line in (FINAL / "run.sh").read_text().splitlines() if line.strip().startswith("ARGS=(")]
    return [shlex.split(line[len("ARGS=("):line.rindex(")")]) for line in lines]


def test_run_sh_starts_the_planned_comparison_and_its_longer_follow_up():
    """run.sh's `nas compare` commands parse, name the plan's networks and the final recipe, and resume
    into their own folders: the comparison, and `long`, the best searched network and ResNet-20 for 60 epochs."""
    from nas.cli import parser
    from nas.cli.compare import config_from_args

    def parsed(argv):
        args = parser().parse_args(["compare", *argv])
        args.argv = ["compare", *argv]  # as `nas` sets it: options written override the recipe's
        return args

    planned, longer = (parsed(argv) for argv in run_sh_commands())
    config = config_from_args(longer)
    assert config.train["epochs"] == 60 and config.seeds >= 2 and config.train["augment"] == "crop=2,flip,cutout=8"
    assert [Path(r).name for r in config.runs] == ["optuna-seed2"] and config.baselines == [
        "results/final-fashion-mnist/genomes/resnet20_w0.6.yaml"]
    assert longer.out == "results/final-fashion-mnist/long/compare"
    args = planned
    config = config_from_args(args)
    assert config.train["epochs"] == load_recipe("final").settings["epochs"] and config.seeds >= 2
    assert config.train["label_smoothing"] == 0.1 and config.train["augment"] == "crop=2,flip,cutout=8"
    assert sorted(Path(r).name for r in config.runs) == sorted(SEARCHED)
    assert sorted(Path(b).name for b in config.baselines) == sorted(["twoconv", *HAND])
    assert config.train_limit is None and args.out == "results/final-fashion-mnist/compare"
    for source in config.baselines:
        assert source == "twoconv" or Genome.load(ROOT / source)


def oneshot_sh_commands() -> dict[str, tuple[list[str], list[str]]]:
    """oneshot.sh's two `nas` commands per variant (search, compare), as the script prints them (`--commands`)."""
    import subprocess

    commands = {}
    for variant in ("spos", "mbconv"):
        done = subprocess.run(["bash", str(FINAL / "oneshot.sh"), variant, "--commands"], capture_output=True,
                              text=True, timeout=30, check=True)
        search, compare = (shlex.split(line) for line in done.stdout.splitlines())
        assert search[:2] == ["nas", "search"] and compare[:2] == ["nas", "compare"]
        commands[variant] = (search[1:], compare[1:])
    return commands


def test_oneshot_sh_commands_parse_and_the_mbconv_space_holds_mbconv_paths_only():
    """oneshot.sh's one-shot searches parse as `nas search` commands into folders of their own, each compared
    beside TPE's network with the final recipe into its variant's folder; the `mbconv` variant's space is
    `compact` cut to one family, every stage of every path an MBConv stage."""
    import random
    import subprocess

    from nas.cli import parser
    from nas.cli.compare import config_from_args as compare_config
    from nas.cli.search import config_from_args
    from nas.spaces import load_space

    commands = oneshot_sh_commands()
    outs = set()
    for variant, (search, compare) in commands.items():
        args = parser().parse_args(search)
        config = config_from_args(args)
        assert config.strategy == "spos" and config.dataset == "fashion_mnist" and config.train["max_params"] == 100_000
        outs.add(args.out)
        compared = parser().parse_args(compare)
        compared.argv = compare  # as `nas` sets it: options written override the recipe's
        plan = compare_config(compared)
        assert [Path(r).name for r in plan.runs] == [Path(args.out).name, "optuna-seed2"]
        assert plan.train["epochs"] == load_recipe("final").settings["epochs"] and plan.seeds == 2
        assert Path(compared.out) == Path(args.out).parent / "compare"
    assert len(outs) == 2
    mbconv = config_from_args(parser().parse_args(commands["mbconv"][0]))
    space = load_space(ROOT / mbconv.space)
    rng = random.Random(0)
    for _ in range(20):
        genome = space.realize(space.sample(rng))
        assert {stage.cell for stage in genome.stages} == {"mbconv"}
    done = subprocess.run(["bash", str(FINAL / "oneshot.sh"), "nope"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stderr.strip() == "oneshot.sh: unknown variant 'nope' (spos or mbconv)"
