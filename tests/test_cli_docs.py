"""Every `neurflow-graph` command written in the README and docs/ parses as written (options, arguments,
choices), and the cheap ones (`--help`, `query --list`, `db path|status|credentials|stop`) run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from neurflow_graph.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SYNOPSIS = ("…", "[", "|")  # usage summaries (`query NAME [--json]`), not commands to run
CHEAP = {("query",): ("--list",), ("db",): ("path", "status", "credentials", "stop")}


def documented_commands() -> list[tuple[str, list[str]]]:
    """(page:line, argv after `neurflow-graph`) of every command in a code block (fenced or indented), with
    `\\` continuations joined, `# comments` dropped and `$NAME` replaced by the block's `NAME="…"`."""
    found = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        fence, names, i = False, {}, 0
        while i < len(lines):
            text, start = lines[i].strip(), i
            if text.startswith("```"):
                fence, names = not fence, {}
            elif fence and (m := re.fullmatch(r'([A-Z_]+)="([^"]*)"', text)):
                names[m[1]] = m[2]
            elif (fence or lines[i].startswith("    ")) and text.startswith("neurflow-graph"):
                while text.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text[:-1] + " " + lines[i].strip()
                for name, value in names.items():
                    text = text.replace(f"${name}", value)
                if not any(mark in text for mark in SYNOPSIS):
                    found.append((f"{page.relative_to(ROOT)}:{start + 1}", shlex.split(text, comments=True)[1:]))
            i += 1
    return found


def parse(argv: list[str]) -> list[str]:
    """Parse `argv` down to its command without running it; the names of the commands it reached."""
    command, name, ctx, path = main, "neurflow-graph", None, []
    while True:
        try:
            ctx = command.make_context(name, list(argv), parent=ctx)
        except click.exceptions.Exit:  # --help, --version
            return path
        if not isinstance(command, click.Group):
            return path
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            return path
        name, command, argv = command.resolve_command(ctx, rest)
        path.append(name)


COMMANDS = documented_commands()


def test_the_docs_hold_commands() -> None:
    pages = {where.split(":")[0] for where, _ in COMMANDS}
    assert {"README.md", "docs/queries.md", "docs/results.md", "docs/scale.md"} <= pages
    assert ["db", "path"] in [argv for _, argv in COMMANDS]


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_parses(where: str, argv: list[str]) -> None:
    try:
        reached = parse(argv)
    except click.BadParameter as exc:
        if "does not exist" not in str(exc):  # a folder of the reader's own (a dataset) is fine
            raise AssertionError(f"{where}: {shlex.join(argv)}: {exc.format_message()}") from None
        reached = ["(path)"]
    except click.UsageError as exc:
        raise AssertionError(f"{where}: {shlex.join(argv)}: {exc.format_message()}") from None
    assert reached, f"{where}: {shlex.join(argv)} names no command"


def _cheap(argv: list[str]) -> bool:
    return "--help" in argv or "--version" in argv or any(
        tuple(argv[:len(group)]) == group and len(argv) > len(group) and argv[len(group)] in names
        for group, names in CHEAP.items())


CHEAP_COMMANDS = sorted({tuple(argv) for _, argv in COMMANDS if _cheap(argv)}
                        | {("--help",), ("--version",), ("query", "--list"), ("db", "path"), ("db", "status")}
                        | {(name, "--help") for _, argv in COMMANDS for name in argv[:1]})


@pytest.mark.parametrize("argv", CHEAP_COMMANDS, ids=[" ".join(a) for a in CHEAP_COMMANDS])
def test_cheap_documented_commands_run(argv: tuple[str, ...], tmp_path: Path) -> None:
    """As written, through the installed entry point; the store commands on a fresh data directory."""
    env = {**os.environ, "NEURFLOW_GRAPH_DATA_DIR": str(tmp_path / "store")}
    env = {k: v for k, v in env.items() if not k.startswith("NEO4J_")}
    done = subprocess.run([sys.executable, "-m", "neurflow_graph.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
