"""benchmarks/gpu_check.py: one clear line and status 2 without a GPU; its throughput part runs (tiny, on a CPU)."""
import subprocess
from pathlib import Path

import benchmark_scripts
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    return benchmark_scripts.load("gpu_check")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_without_a_gpu_it_says_so_in_one_line(gpu_check, capsys):
    assert gpu_check.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("gpu_check: ") and "--device cpu" in captured.err


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="this machine has an NVIDIA device")
def test_the_shell_wrapper_refuses_at_once_without_a_gpu():
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHON": "/nonexistent"})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("gpu_check: ") and done.stderr.count("\n") == 1


def test_bad_arguments_are_one_line(gpu_check, capsys):
    with pytest.raises(SystemExit) as stop:
        gpu_check.main(["--parts", "throughput,speed"])
    assert stop.value.code == 2 and "unknown part 'speed'" in capsys.readouterr().err


def test_the_throughput_part_runs_on_a_cpu(gpu_check, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert gpu_check.main(["--device", "cpu", "--parts", "throughput", "--images", "16", "--batch", "8"]) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if "images/s" in line]
    assert len(rows) == 4 and "channels-last" in rows[1] and "amp" in rows[2]
    assert "speed-up over fp32 default" in printed
    assert list(tmp_path.iterdir()) == []  # the throughput part writes nothing


def test_the_oneshot_part_runs_on_a_cpu(gpu_check, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert gpu_check.main(["--device", "cpu", "--parts", "oneshot", "--dataset", "digits", "--oneshot-strategies",
                           "spos", "--oneshot-channels", "4", "--oneshot-images", "64", "--oneshot-repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert "one-shot supernets" in printed and "FLOP ratio" in printed
    (row,) = [line for line in printed.splitlines() if line.startswith("spos ")]
    assert float(row.split()[3]) > 0  # the ratio of the supernet's epoch to the first path's network's
    assert list(tmp_path.iterdir()) == []  # it writes nothing
