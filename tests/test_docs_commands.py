"""Every `nas` command the README and docs/ show is one the command line takes as written: the subcommand,
each flag, its value's type and choices (the real parser), a search's `--option`s (its strategy's own
check of their names and values) and the search-space files it names. Running them all takes hours (they
are the documented experiments); the commands themselves run with tiny budgets in the other tests."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from nas.cli import parser
from nas.cli.search import config_from_args
from nas.errors import NasError
from nas.search.strategies import strategy_class

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL = ("", "sh", "bash", "console")
# the plug-in page's commands name a strategy its example registers (tests/test_plugins.py runs them)
PLUGGED_IN = ("--strategy greedy", "--space chain", "--space my_space.yaml")


def shown_commands(page: Path) -> list[str]:
    """The `nas ...` lines of a page's shell blocks, continuation lines joined, comments dropped; usage
    synopses (``[--json]``, ``RUN_DIR...``) are grammar, not commands, and are left out."""
    commands, language, pending = [], None, ""
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            language = line[3:].strip() if language is None else None
            continue
        if language not in SHELL:
            continue
        text = pending + line.strip()
        pending = ""
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        text = text.split("  # ")[0].split(" # ")[0].strip()
        if text.startswith("nas ") and "[" not in text.replace("stages[", "") and "..." not in text:
            commands.append(text)
    return commands


COMMANDS = [(page, command) for page in PAGES for command in shown_commands(page)]


def test_the_pages_show_commands_of_every_kind():
    assert len(COMMANDS) >= 60
    kinds = {shlex.split(command)[1] for _, command in COMMANDS}
    assert {"search", "train", "compare", "bench", "export", "build", "scale", "draw", "ops"} <= kinds


def problem(command: str) -> str | None:
    """Why the command line would refuse `command` as written; None if it takes it."""
    argv = shlex.split(command)[1:]
    try:
        args = parser(argv).parse_args(argv)
    except SystemExit:
        return "refused by the parser"
    if args.command == "search" and not args.resume and not args.help_options:
        try:
            config = config_from_args(args)
            strategy_class(config.strategy).resolve_options(config.options)  # as a search checks them
        except NasError as error:
            return str(error)
        if config.space.endswith((".yaml", ".yml")) and "/" in config.space and not (ROOT / config.space).is_file():
            return f"no space file {config.space}"
    return None


@pytest.mark.parametrize("page, command", COMMANDS,
                         ids=[f"{page.relative_to(ROOT)}: {command[:60]}" for page, command in COMMANDS])
def test_a_command_of_the_docs_is_taken_as_written(page, command, capsys):
    if page.name == "plugins.md" and any(words in command for words in PLUGGED_IN):
        pytest.skip("a plug-in strategy or space of the page's own example")
    assert problem(command) is None, f"{page.name}: `{command}`: {problem(command)} {capsys.readouterr().err.strip()}"


@pytest.mark.parametrize("command", [
    "nas search --strategy evolution --trails 40",  # a mistyped flag
    "nas search --strategy evolution --option populaton=20",  # a mistyped option of the strategy
    "nas search --strategy optuna --option sampler=nope",  # a value the option does not take
    "nas search --strategy random --space search_spaces/nope.yaml",
    "nas train resnet20 --epochs three",
    "nas bench rank bench/digits-cells --against nope",
])
def test_a_command_the_line_would_refuse_is_caught(command, capsys):
    assert problem(command) is not None
