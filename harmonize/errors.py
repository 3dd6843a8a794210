"""The one error type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class StripeError(Exception):
    """A problem with the user's input (a file, a flag, a checkpoint), not a bug.

    The CLI prints ``error: <path>: <message>`` on one line and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


def run_script(main, *args) -> None:
    """Run a script's ``main`` as the CLI runs a command: a ``StripeError`` (an existing ``--json-out``
    without ``--force``, a missing folder) is one line on stderr and exit 2, not a traceback."""
    import sys

    try:
        main(*args)
    except StripeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
