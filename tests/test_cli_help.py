"""The command line answers at once: `--help` of `nas` and of every subcommand, and `--resume` of a damaged
search.json, import neither torch nor Ray (checked in a fresh interpreter's sys.modules), every option shows
help, `--version`, `python -m nas`, and `nas search --help-options` lists a strategy's options from its class."""
import subprocess
import sys
from pathlib import Path

import pytest

import nas
from nas.cli import COMMANDS, main, parser

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "matplotlib", "optuna")

PROBE = """
import sys
from nas.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def probe(*argv):
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    return done.stdout, done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in COMMANDS]], ids=lambda a: " ".join(a))
def test_help_imports_neither_torch_nor_ray(argv):
    out, loaded = probe(*argv)
    assert out.startswith("usage: nas")
    assert loaded == "[]", f"nas {' '.join(argv)} imported {loaded}"


@pytest.mark.parametrize("saved", ["{broken", "[1]"], ids=["not JSON", "not a configuration"])
def test_resuming_a_damaged_search_json_says_so_before_importing_torch_or_ray(saved, tmp_path):
    (tmp_path / "search.json").write_text(saved)
    _, loaded = probe("search", "--resume", "--out", str(tmp_path))
    assert loaded == "[]", f"nas search --resume of a damaged search.json imported {loaded}"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_has_help_and_help_fits_80_columns(name, capsys):
    top = parser([name])
    sub = next(a for a in top._actions if a.dest == "command").choices[name]
    for action in sub._actions:
        assert action.help, f"nas {name} {'/'.join(action.option_strings) or action.dest}: no help text"
    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80


def test_defaults_are_shown(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("--trials N architectures to train (default 16)", "(default: 0)", "(default: digits)"):
        assert shown in text


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"nas {nas.__version__}"


def test_python_dash_m_nas_runs_the_command_line():
    done = subprocess.run([sys.executable, "-m", "nas", "--version"], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"nas {nas.__version__}"


def test_help_options_lists_a_strategys_options_from_its_class(capsys):
    from nas.search.strategies import strategy_class

    assert main(["search", "--strategy", "evolution", "--help-options"]) == 0
    text = capsys.readouterr().out
    cls = strategy_class("evolution")
    for name in cls.OPTIONS:
        assert f"  {name} ({cls.OPTION_HELP[name][0]}, default none)" in text
    assert cls.OPTION_HELP["population"][1].split(";")[0] in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_help_options_without_a_strategy_lists_them_all_with_defaults(capsys):
    from nas.search.strategies import STRATEGIES

    assert main(["search", "--help-options"]) == 0
    text = capsys.readouterr().out
    assert all(f"{name}: " in text for name in STRATEGIES)
    assert "  lr (float >= 0, default 0.0006)" in text and "  sampler (str: tpe or nsga2, default tpe)" in text


def test_every_option_of_our_strategies_is_described():
    from nas.search.strategies import STRATEGIES, strategy_class

    for name in STRATEGIES:
        cls = strategy_class(name)
        if cls.__module__.startswith("nas.search.strategies."):  # ours (a plug-in may describe less)
            assert set(cls.OPTION_HELP) == set(cls.OPTIONS), name


def test_mistakes_are_one_line_with_a_did_you_mean(capsys):
    """argparse's reason in one line (not after its usage block), with the closest known name."""
    for argv, words in [(["serch"], "did you mean 'search'"),
                        (["search", "--strategy", "evolutoin"], "did you mean 'evolution'?"),
                        (["search", "--strategy", "random", "--dataset", "fashion_mnst"], "did you mean 'fashion_mnist'?"),
                        (["search", "--epochs", "x"], "invalid int value: 'x'")]:
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and words in err and "usage:" not in err, err


def test_the_help_names_every_strategy_and_space(capsys):
    from nas.resources import space_names
    from nas.search.strategies import STRATEGIES

    assert all(name in COMMANDS["search"][1] for name in STRATEGIES)
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(f"{name}," in text or f"{name} or" in text for name in space_names())
