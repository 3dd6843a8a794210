"""Assertions shared by the CLI hardening tests (``test_outputs.py``, ``test_cli_errors.py``, ``test_bounds.py``)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from harmonize.cli import app

runner = CliRunner()


def run(*args):
    """``stripe`` with these arguments, in process (as a user sees it: stdout, stderr, exit code)."""
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, where, message: str) -> None:
    """Exit 2, no traceback, and one line ``error: <where>: ...`` holding ``message`` (after the two lines
    ``stripe train`` prints when it starts, if any)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    lines = result.stderr.strip().splitlines()
    if lines and lines[0].startswith(("training ", "resuming ")):  # train says what it starts first
        lines = lines[2:] if not lines[1].startswith("error") else lines[1:]
    assert len(lines) == 1 and lines[0].startswith(f"error: {where}: "), result.stderr
    assert message in lines[0], lines[0]
    assert len(lines[0]) - len(f"error: {where}: ") < 300  # the message, whatever the input held


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())
