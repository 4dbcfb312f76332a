"""The `nas` command line. Each subcommand is a module of this package with
``add_arguments(parser)`` and ``run(args) -> int``; `COMMANDS` lists them.

Only the subcommand being run is imported and given its options, and the modules import torch, Ray
and matplotlib inside ``run`` only, so that ``nas --help`` and ``nas COMMAND --help`` answer at once.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import NoReturn

from nas import __version__
from nas.cli.failure import EXIT_CODE as FAILURE_EXIT_CODE
from nas.cli.failure import internal_error_line
from nas.cli.quick_exit import run_then_exit_quickly
from nas.errors import NasError
from nas.suggest import did_you_mean

# subcommand -> (module under nas.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "baselines": ("baselines", "list the baseline genomes with their parameters, FLOPs and MACs"),
    "build": ("build", "build a genome; print its parameters, FLOPs, MACs and per-stage output shapes"),
    "scale": ("scale", "scale a genome's width, depth and input resolution; write the new genome"),
    "draw": ("draw", "draw a genome: network overview and each distinct cell graph (PNG or SVG)"),
    "search": ("search", "search architectures on Ray Tune (random, evolution, rl, scaling, optuna, pnas; "
               "one-shot: darts, pcdarts, spos, rsws, enas); resumable"),
    "compare": ("compare", "retrain searched and hand-designed networks (same data, recipe, seeds); report with significance"),
    "train": ("train", "train or fine-tune one genome with a search trial's recipe; report its test accuracy"),
    "bench": ("bench", "build a ground-truth table of trained architectures; rank zero-cost proxies against it"),
    "export": ("export", "export a genome (with its weights) as TorchScript, torch.export or ONNX"),
    "ops": ("ops", "list every op a cell node can carry: parameters, types, defaults, meaning"),
    "templates": ("templates", "list every cell template a stage can use: parameters, types, defaults, meaning"),
    "recipes": ("recipes", "list the training recipes --recipe takes: description and key settings"),
}


WIDTH = 80  # help fits an 80-column terminal


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (unless its help already says it, or it has none) and keeps the
    description's line breaks (`describe` wraps it)."""

    def __init__(self, prog: str, **kwargs) -> None:
        super().__init__(prog, width=WIDTH, **kwargs)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        no_default = action.default is None or action.default is False or action.default == [] \
            or action.default == argparse.SUPPRESS
        if "default" in text.lower() or no_default:
            return text
        return super()._get_help_string(action)


def describe(doc: str) -> str:
    """A command module's docstring for its `--help`, within `WIDTH` columns: paragraphs wrapped,
    example lines (indented) kept, their ``# comment`` on a line of its own."""
    lines: list[str] = []
    for paragraph in textwrap.dedent(doc).strip().split("\n\n"):
        if paragraph.startswith("    "):
            for line in paragraph.splitlines():
                command, _, comment = line.strip().partition("  # ")
                lines += textwrap.wrap(command.strip(), WIDTH - 2, initial_indent="  ", subsequent_indent="      ",
                                       break_on_hyphens=False)
                if comment:
                    lines += textwrap.wrap(comment.strip(), WIDTH - 6, initial_indent="      # ",
                                           subsequent_indent="        ")
        else:
            lines += textwrap.wrap(" ".join(paragraph.split()), WIDTH - 2)
        lines.append("")
    return "\n".join(lines).rstrip()


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line (the reason, a "did you mean" for a mistyped choice and
    where the usage is) instead of the whole usage block followed by the reason."""

    def error(self, message: str) -> NoReturn:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            message += did_you_mean(choice.group(1), re.findall(r"'?([^', ]+)'?", choice.group(2)))
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help shows the usage)\n")


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is one), None if none is."""
    return next((word for word in argv if word in COMMANDS), None)


def parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in `argv` gets its options (all of them when `argv` is None)."""
    top = ArgumentParser(prog="nas", description="Neural architecture search over graph genomes.",
                         formatter_class=HelpFormatter)
    top.add_argument("--version", action="version", version=f"nas {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen(argv) if argv is not None else None
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, formatter_class=HelpFormatter)
        if argv is None or name == chosen:
            module = importlib.import_module(f"nas.cli.{module_name}")
            sub.description = describe(module.__doc__ or help_text)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return top


def given_options(argv: Sequence[str], command: str) -> frozenset[str]:
    """The options of `command` written on the command line `argv` (a value equal to the default included),
    as their argparse dests: `argv` parsed again with every default of the subcommand suppressed."""
    top = parser(argv)
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for action in commands.choices[command]._actions:
        action.default = argparse.SUPPRESS
    return frozenset(vars(top.parse_args(argv))) - {"command", "run"}


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the `nas` program: its exit skips the interpreter's teardown (nas.cli.quick_exit)
        return run_then_exit_quickly(main, sys.argv[1:])
    argv = list(argv)
    args = parser(argv).parse_args(argv)
    args.argv = argv  # what the user wrote (`given_options`), e.g. to check it against a saved run
    try:
        return int(args.run(args) or 0)
    except NasError as error:
        print(f"nas {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`nas ops --json | head`): stop quietly, as `head` expects
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the final flush cannot fail too
        return 0
    except OSError as error:  # the safety net for file errors the commands do not check first: one line, the path
        where = f"{error.filename}: " if error.filename else ""
        print(f"nas {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:  # nas.engine.interrupts.Interrupted carries SIGTERM's code (143)
        print(f"nas {args.command}: interrupted", file=sys.stderr)
        return int(getattr(error, "exit_code", 130))
    except Exception as error:  # noqa: BLE001 - not bad input: one line and a log file, never a traceback
        print(internal_error_line(args.command, argv, error), file=sys.stderr)
        return FAILURE_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
