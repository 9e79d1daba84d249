"""Every command's ``--help``: flags read as flags, and every help text is true."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from contextstore._admin.cli import app

# typer 0.29 builds its tree on a click of its own (not the click package): the
# tree is walked by the attributes every click command has, not by class


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command and group of the tree, the root included."""
    found = [path]
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
    return found


TREE = typer.main.get_command(app)
COMMANDS = _commands(TREE)


def _command(path: tuple[str, ...]) -> Any:
    command: Any = TREE
    for name in path:
        command = command.commands[name]
    return command


def help_of(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_tree_has_every_documented_command() -> None:
    assert {" ".join(path) for path in COMMANDS} == {
        "",
        "demo",
        "health",
        "db",
        "db upgrade",
        "db downgrade",
        "db current",
        "db check",
        "db copy",
        "db verify",
        "db backup",
        "db restore",
        "memory",
        "memory purge-expired",
    }


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "contextstore")
def test_flags_render_as_plain_flags(path: tuple[str, ...]) -> None:
    text = help_of(*path)
    assert "<bool>" not in text
    flags = ["--help"] + [
        name
        for param in _command(path).params
        if getattr(param, "is_flag", False)
        for name in param.opts
    ]
    for name in flags:
        # the flag's name, then only spaces before its help text
        assert re.search(rf"^\s+{re.escape(name)}\s{{2,}}\S", text, re.MULTILINE), name


def test_help_option_renders_plain() -> None:
    assert re.search(r"^\s+--help\s{2,}Show this message and exit\.", help_of(), re.MULTILINE)
    assert re.search(r"^\s+--version\s{2,}Print the version", help_of(), re.MULTILINE)


@pytest.mark.parametrize(
    ("path", "inserts"),
    [
        (("db", "copy"), True),
        (("db", "restore"), True),
        (("db", "verify"), False),
        (("db", "backup"), False),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_batch_size_help_says_what_the_command_does(path: tuple[str, ...], inserts: bool) -> None:
    (option,) = [p for p in _command(path).params if "--batch-size" in p.opts]
    assert isinstance(option.help, str)
    assert ("INSERT" in option.help) is inserts, option.help
    assert "read" in option.help
    assert "--batch-size N" in help_of(*path)


def test_there_is_no_bench_command() -> None:
    # the benchmark is a script (benchmarks/bench.py), not a contextstore command
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 2
    assert "bench" not in help_of()
