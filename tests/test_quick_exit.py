"""The `nas` program's exit skips the interpreter's teardown (nas.cli.quick_exit): the exit code, the
output and the atexit callbacks registered while the command ran are all kept."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_the_code_the_unflushed_output_and_later_callbacks_are_kept(tmp_path):
    marker = tmp_path / "callback.txt"
    script = textwrap.dedent(f"""
        import atexit, sys
        from nas.cli.quick_exit import run_then_exit_quickly

        def command(argv):
            atexit.register(lambda: open({str(marker)!r}, "w").write("ran"))  # registered while the command runs
            sys.stdout.write("no newline, not flushed " + " ".join(argv))
            return 3

        sys.exit(run_then_exit_quickly(command, ["a", "b"]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 3
    assert done.stdout == "no newline, not flushed a b"
    assert marker.read_text() == "ran"


def test_the_program_keeps_its_output_and_exit_code():
    done = subprocess.run([sys.executable, "-m", "nas", "search", "--trials", "1"], capture_output=True,
                          text=True, env=ENV, timeout=120)
    assert done.returncode == 2  # a line from the command, returned (not an exception)
    assert done.stderr.startswith("nas search: error: --strategy is required")
    quick = subprocess.run([sys.executable, "-m", "nas", "ops"], capture_output=True, text=True, env=ENV, timeout=120)
    normal = subprocess.run([sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main(['ops']))"],
                            capture_output=True, text=True, env=ENV, timeout=120)  # argv given: the usual exit
    assert quick.returncode == normal.returncode == 0
    assert quick.stdout == normal.stdout and len(quick.stdout.splitlines()) > 5  # all of it, to the last line
