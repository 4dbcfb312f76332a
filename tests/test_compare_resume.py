"""`nas compare --resume DIR`: the comparison saved in DIR/compare.json, continued as its own command would;
options that would change it, and folders without a comparison, are refused in one line (no Ray needed)."""
from __future__ import annotations

import json

from nas.cli import main, parser
from nas.cli.compare import command_line, config_from_args, resumed_config


def parsed(argv):
    args = parser(argv).parse_args(argv)
    args.argv = argv
    return args


def test_resume_reads_the_saved_comparison(tmp_path):
    out = tmp_path / "cmp"
    out.mkdir()
    first = ["compare", "--no-default-baselines", "--baselines", "resnet20", "twoconv", "--dataset", "fashion_mnist",
             "--recipe", "final", "--epochs", "7", "--seeds", "2", "--out", str(out)]
    config = config_from_args(parsed(first))
    (out / "compare.json").write_text(json.dumps(config.to_dict(), indent=2))
    again = resumed_config(parsed(["compare", "--resume", str(out), "--quiet"]))
    assert again == config and again.train["epochs"] == 7 and again.train["label_smoothing"] == 0.1
    assert command_line(again, out) == command_line(config, out)


def test_resume_refuses_changes_and_missing_comparisons(tmp_path, capsys):
    assert main(["compare", "--resume", str(tmp_path), "--seeds", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("leave out --seeds") and len(err.splitlines()) == 1
    assert main(["compare", "runs/x", "--resume", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith("leave out RUN_DIR")
    assert main(["compare", "--resume", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no comparison to resume (no compare.json" in err and len(err.splitlines()) == 1
    (tmp_path / "compare.json").write_text("{not json")
    assert main(["compare", "--resume", str(tmp_path)]) == 2
    assert "not a comparison's settings" in capsys.readouterr().err
