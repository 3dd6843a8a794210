"""Read a user's chord file (``--chords``): one chord per line, each lasting until the next.

Format (plain text, UTF-8)::

    # a comment starts a line, or follows whitespace ('F#m  # like this'); blank lines are ignored
    0       C          # TIME CHORD
    2.5     Am7        # TIME in seconds (from the start of the file) ...
    3:1     F:maj      # ... or BAR:BEAT, both 1-based (bar 3, beat 1), beats as the file's meter counts them;
                       # a pickup (anacrusis) is bar 0, its beats counted from its own start
    4:3     G7/B       # CHORD: lead-sheet (Am7, G7/B, F#dim) or Harte (A:min7, G:7/3) symbols; N = no chord
    5:1     C#m(add9)  # qualities outside the vocabulary (7sus4, add9, 7b9, 6, 13 ...) map to the nearest

The file may start with a UTF-8 byte-order mark and may be at most 2 MB (a song needs a few kB).
Times must not go backwards. Each chord lasts until the next one; the last lasts until the end of the
song; before the first chord there is no chord (N). Times are snapped to the nearest 16th step.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from pathlib import Path

from ..chords import NO_CHORD, Chord, parse_chord
from ..errors import StripeError
from ..song import ChordSpan, Grid

MAX_BYTES = 2 * 2**20
QUOTE = 80  # an error quotes at most this many characters of the file


def _quote(text: str) -> str:
    """``repr`` of at most ``QUOTE`` characters of ``text`` (error lines stay short whatever the file holds)."""
    return repr(text if len(text) <= QUOTE else text[:QUOTE] + "...")


_BAR_BEAT = re.compile(r"^(\d{1,9}):(\d{1,9})$", re.ASCII)
_COMMENT = re.compile(r"(^|\s)#.*$")  # '#' after a letter is a sharp (F#m), not a comment
_SECONDS = re.compile(r"^\d{1,9}(\.\d{0,9})?$|^\.\d{1,9}$", re.ASCII)


def _step_of(token: str, grid: Grid, where: str, path: Path) -> int:
    m = _BAR_BEAT.match(token)
    if m:
        bar, beat = int(m.group(1)), int(m.group(2))
        first = 0 if grid.pickup else 1  # a pickup bar is bar 0
        if not first <= bar < len(grid.bar_starts) + first:
            raise StripeError(f"{where}: bar {bar} is outside the song (bars {first}-{len(grid.bar_starts) - 1 + first})",
                              path)
        index = bar - first
        start = grid.bar_starts[index]
        end = grid.bar_starts[index + 1] if index + 1 < len(grid.bar_starts) else grid.n_steps
        lo, hi = bisect_left(grid.beat_starts, start), bisect_left(grid.beat_starts, end)  # O(log n) a line
        beats = list(grid.beat_starts[lo:hi]) or [start]
        if not 1 <= beat <= len(beats):
            raise StripeError(f"{where}: bar {bar} has {len(beats)} beats, not {beat}", path)
        return beats[beat - 1]
    if _SECONDS.match(token):
        seconds = float(token)
        if seconds > grid.step_times[-1] + 1e-6:
            raise StripeError(
                f"{where}: time {seconds:g} s is after the end of the song ({grid.step_times[-1]:.2f} s)", path
            )
        return int(grid.time_to_step(seconds))
    raise StripeError(f"{where}: cannot read time {_quote(token)} (seconds like 12.5, or BAR:BEAT like 5:3)", path)


def read_chord_file(path: str | Path, grid: Grid) -> list[ChordSpan]:
    """Parse a chord file (format in the module docstring) into spans on ``grid``."""
    path = Path(path)
    if not path.exists():
        raise StripeError("no such file", path)
    if path.is_dir():
        raise StripeError("is a folder, not a chord file", path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise StripeError(f"file is {size / 2**20:.1f} MB, over the {MAX_BYTES // 2**20} MB limit of a chord file",
                              path)
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)  # a FIFO or a growing file: never more than the cap
        if len(data) > MAX_BYTES:
            raise StripeError(f"over the {MAX_BYTES // 2**20} MB limit of a chord file", path)
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StripeError("not a text file (expected lines like '5:1 Am7')", path) from exc
    except OSError as exc:
        raise StripeError(f"cannot read file: {exc.strerror}", path) from exc
    points: list[tuple[int, Chord]] = []
    for n, line in enumerate(text.splitlines(), 1):
        body = _COMMENT.sub("", line).strip()
        if not body:
            continue
        parts = body.split()
        if len(parts) != 2:
            raise StripeError(f"line {n}: expected 'TIME CHORD', got {_quote(body)}", path)
        step = _step_of(parts[0], grid, f"line {n}", path)
        try:
            chord = parse_chord(parts[1])
        except ValueError as exc:
            detail = str(exc) if len(str(exc)) <= 2 * QUOTE else str(exc)[: 2 * QUOTE] + "..."
            raise StripeError(f"line {n}: {detail}", path) from exc
        if points and step < points[-1][0]:
            raise StripeError(f"line {n}: time {parts[0]} is before the previous chord's", path)
        if points and step == points[-1][0]:
            points[-1] = (step, chord)  # two chords on one step: the later line wins
        else:
            points.append((step, chord))
    if not points:
        raise StripeError("no chords in the file (expected lines like '5:1 Am7')", path)
    spans = []
    bounds = [s for s, _ in points[1:]] + [grid.n_steps]
    for (start, chord), end in zip(points, bounds, strict=True):
        if end > start:
            spans.append(ChordSpan(start, end, chord))
    if spans and spans[0].start > 0:
        spans.insert(0, ChordSpan(0, spans[0].start, NO_CHORD))
    return spans
