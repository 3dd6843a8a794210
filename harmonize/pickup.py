"""Pickups (anacrusis): a tune whose file starts with the upbeat at tick 0, bar lines one bar early.

``detect_pickup`` reads the melody's metric accents (long notes fall on downbeats) against the file's
meter and says how many steps of upbeat the file starts with; ``with_pickup`` moves the bar lines so that
bar 0 is the short pickup bar and every later bar starts on a true downbeat. Only bar lines move: steps,
times and notes stay where they are, so the written MIDI keeps the source's timing exactly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .errors import StripeError
from .song import Grid, Song


def _first_segment(grid: Grid) -> tuple[int, int, int]:
    """``(bar length, beat length, end step)`` of the first meter of the grid."""
    bar_len = grid.bar_starts[1] - grid.bar_starts[0] if len(grid.bar_starts) > 1 else grid.n_steps
    beats = [b for b in grid.beat_starts if b < bar_len]
    beat_len = beats[1] - beats[0] if len(beats) > 1 else bar_len
    changes = [s for s, _, _ in grid.time_signatures if s > 0]
    return bar_len, beat_len, min(changes) if changes else grid.n_steps


def accent_profile(song: Song) -> np.ndarray:
    """Metric weight of each step position within the bar: the summed length of melody notes that start
    there (an agogic accent; long notes mark the strong beats). Over the first meter only."""
    bar_len, _, seg_end = _first_segment(song.grid)
    profile = np.zeros(bar_len)
    for n in song.melody:
        if n.start < seg_end:
            profile[n.start % bar_len] += min(n.end - n.start, bar_len)
    return profile


def detect_pickup(song: Song, margin: float = 1.5, min_bars: int = 4, sub_beat_margin: float = 1.25) -> int:
    """Steps of pickup at the start of the file (0: none). A pickup of ``k`` steps is detected when the
    melody starts before step ``k``, the melody's accents at the shifted bar lines outweigh those at the
    file's bar lines by ``margin``, and the first meter lasts ``min_bars`` bars or more. Whole beats are
    tried, and eighth notes (an eighth upbeat in 6/8 or 2/4) with ``sub_beat_margin`` (tuned on Essen's
    ``erk10``, `benchmarks/pickup_detection.py`; a tune without an upbeat starts on the downbeat, so only
    tunes that start after a rest can raise a false alarm)."""
    grid = song.grid
    if not song.melody or len(grid.bar_starts) < 2 or grid.bar_starts[0] != 0:
        return 0
    bar_len, beat_len, seg_end = _first_segment(grid)
    if seg_end < min_bars * bar_len or beat_len >= bar_len:
        return 0
    profile = accent_profile(song)
    first = min(n.start for n in song.melody)
    floor = max(profile[0], 1e-9)
    best, best_score = 0, 0.0
    eighth = 2  # steps: the grid is in 16ths
    for shift in range(eighth, bar_len, eighth):
        if first >= shift:  # the melody must start inside the would-be pickup bar
            continue
        need = margin if shift % beat_len == 0 else sub_beat_margin
        if profile[shift] >= need * floor and profile[shift] > best_score:
            best, best_score = shift, profile[shift]
    return best


def with_pickup(song: Song, steps: int) -> Song:
    """``song`` with its bar lines moved ``steps`` later: bar 0 is a pickup of ``steps`` steps. A pickup that
    is not whole beats moves the beats too (an eighth upbeat in 6/8: beats fall on steps 0, 2, 8, 14, ...)."""
    if steps == 0:
        return song
    grid = song.grid
    bar_len, beat_len, seg_end = _first_segment(grid)
    if not 0 < steps < bar_len:
        raise StripeError(f"a pickup must be shorter than the first bar ({bar_len} sixteenths)")
    end = min(seg_end, grid.n_steps)
    bars = [0] + [b + steps for b in grid.bar_starts if b + steps < end]
    bars += [b for b in grid.bar_starts if b >= seg_end]
    beats = list(grid.beat_starts)
    offset = steps % beat_len
    if offset:
        beats = [0] + [b + offset for b in grid.beat_starts if b < seg_end and b + offset < end]
        beats += [b for b in grid.beat_starts if b >= seg_end]
    return replace(song, grid=Grid(grid.step_times, sorted(set(bars)), sorted(set(beats)), grid.time_signatures,
                                        pickup=True))


def pickup_steps(song: Song, beats: float | None) -> tuple[int, str]:
    """Resolve ``--pickup``: ``None`` detects, ``0`` means none, else that many of the meter's beats.
    Returns ``(steps, how)``."""
    if beats is None:
        steps = detect_pickup(song)
        return steps, "detected" if steps else "none"
    if beats < 0:
        raise StripeError("--pickup must be 0 or more beats")
    _, beat_len, _ = _first_segment(song.grid)
    steps = round(beats * beat_len)
    if abs(steps - beats * beat_len) > 1e-6:
        raise StripeError(f"--pickup {beats:g} does not fall on a 16th note")
    return steps, "given" if steps else "none"


def apply_pickup(song: Song, beats: float | None) -> tuple[Song, int, str]:
    """The bar lines ``stripe harmonize`` (and ``stripe labels``) use: ``--pickup`` resolved and applied,
    ``(song, steps, how)``. Bars inferred from the notes already start on the melody's downbeats, so an
    upbeat is only detected on the file's own grid (a given ``--pickup`` applies to either)."""
    if beats is None and song.grid_source == "notes":
        return song, 0, "none"
    steps, how = pickup_steps(song, beats)
    return with_pickup(song, steps), steps, how


def beat_steps(grid: Grid) -> int:
    """Steps per beat of the first meter."""
    return _first_segment(grid)[1]
