"""The in-memory song every stage shares: notes on a 16th-note grid tied to the file's own clock.

Nothing here reads or writes files: ``io/midi.py`` and ``data/pop909.py`` build a ``Song``; ``structure.py``
labels it; ``encode.py`` turns it into tensors. Times in seconds live only in ``Grid``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from .chords import Chord

STEPS_PER_QUARTER = 4  # 16th-note resolution (architecture.md: decided)


@dataclass(frozen=True)
class Note:
    start: int  # first step (inclusive)
    end: int  # last step (exclusive); end > start
    pitch: int
    velocity: int = 90


@dataclass(frozen=True)
class ChordSpan:
    start: int
    end: int
    chord: Chord


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" | "minor"

    def __post_init__(self):
        if self.mode not in ("major", "minor"):
            raise ValueError(f"mode must be major or minor, not {self.mode!r}")

    @property
    def name(self) -> str:
        """``"Db major"``, ``"G# minor"``: the tonic as the key signature spells it."""
        from .spelling import key_name

        return key_name(self)

    @property
    def scale(self) -> frozenset[int]:
        """Pitch classes of the key: the major scale, or natural minor plus the leading tone (V, vii°)."""
        steps = (0, 2, 4, 5, 7, 9, 11) if self.mode == "major" else (0, 2, 3, 5, 7, 8, 10, 11)
        return frozenset((self.tonic + i) % 12 for i in steps)


@dataclass
class Grid:
    """Step boundaries in seconds plus the metre, as the source file defines them.

    ``step_times[k]`` is the start of step k; the array has ``n_steps + 1`` entries so the last one
    closes the final step. ``bar_starts`` and ``beat_starts`` are step indices.
    ``time_signatures`` holds ``(step, numerator, denominator)`` changes.
    """

    step_times: np.ndarray
    bar_starts: list[int]
    beat_starts: list[int]
    time_signatures: list[tuple[int, int, int]] = field(default_factory=list)
    pickup: bool = False  # bar_starts[0] is a pickup (bar 0 to a musician; numbering starts at the next)

    @property
    def n_steps(self) -> int:
        return len(self.step_times) - 1

    def time_to_step(self, seconds) -> np.ndarray:
        """Nearest step boundary for each time (clipped to the grid)."""
        t = np.asarray(seconds, dtype=np.float64)
        idx = np.searchsorted(self.step_times, t)
        idx = np.clip(idx, 1, len(self.step_times) - 1)
        left, right = self.step_times[idx - 1], self.step_times[idx]
        nearest = np.where(t - left <= right - t, idx - 1, idx)
        return nearest.astype(np.int64)

    def step_to_time(self, steps) -> np.ndarray:
        """Seconds of step boundaries; fractional steps interpolate, steps past the end extrapolate."""
        s = np.asarray(steps, dtype=np.float64)
        k = np.arange(len(self.step_times), dtype=np.float64)
        inside = np.interp(s, k, self.step_times)
        last = self.step_times[-1] - self.step_times[-2] if len(self.step_times) > 1 else 0.125
        return np.where(s > k[-1], self.step_times[-1] + (s - k[-1]) * last, inside)

    def bar_of_step(self, steps) -> np.ndarray:
        return np.searchsorted(np.asarray(self.bar_starts), np.asarray(steps), side="right") - 1

    @classmethod
    def from_beats(cls, beat_times, downbeats=None, steps_per_beat: int = STEPS_PER_QUARTER) -> Grid:
        """A grid that splits each beat evenly (POP909's ``beat_midi.txt``, or any beat list)."""
        beats = np.asarray(beat_times, dtype=np.float64)
        if len(beats) < 2 or np.any(np.diff(beats) <= 0):
            raise ValueError("beat times must be at least two, strictly increasing")
        step_times = np.concatenate(
            [np.linspace(a, b, steps_per_beat, endpoint=False) for a, b in zip(beats[:-1], beats[1:], strict=False)]
            + [beats[-1:]]
        )
        beat_starts = list(range(0, len(step_times) - 1, steps_per_beat))
        if downbeats is None:
            bar_starts = beat_starts[::4]
        else:
            flags = np.asarray(downbeats, dtype=bool)[: len(beats) - 1]
            bar_starts = [b for b, f in zip(beat_starts, flags, strict=False) if f] or [0]
            if bar_starts[0] != 0:
                bar_starts = [0] + bar_starts  # a pickup before the first downbeat is bar 0
        return cls(step_times, bar_starts, beat_starts)


@dataclass
class Song:
    """One piece of music on the grid. ``melody`` is monophonic (its top line)."""

    name: str
    grid: Grid
    melody: list[Note]
    bridge: list[Note] = field(default_factory=list)
    piano: list[Note] = field(default_factory=list)
    chords: list[ChordSpan] | None = None  # annotated or read from the file; None when unknown
    key: Key | None = None  # annotated or given by the user; None when unknown
    tempo_bpm: float = 120.0  # first tempo, for display
    melody_track: str = ""  # which source track the melody came from, for display
    # the file's other pitched tracks (label -> notes), kept for reading a chord track; not the accompaniment
    others: dict[str, list[Note]] = field(default_factory=dict)
    grid_source: str = "file"  # "file": the file's own tick grid; "notes": beats and bars inferred from the notes

    @property
    def n_steps(self) -> int:
        return self.grid.n_steps

    @property
    def n_bars(self) -> int:
        return len(self.grid.bar_starts)


def fill_rests(melody: list[Note], other: list[Note]) -> list[Note]:
    """``melody`` with the notes of ``other`` that sound only while it rests (none overlapping a melody note)
    added, in onset order: a second line heard where the first is silent."""
    ends = sorted((n.start, n.end) for n in melody)
    starts = [a for a, _ in ends]
    longest_end = []  # running maximum of the melody notes' ends, by onset
    for _, b in ends:
        longest_end.append(max(b, longest_end[-1]) if longest_end else b)
    kept = []
    for n in other:
        i = bisect.bisect_left(starts, n.end)  # melody notes starting before this note ends
        if i == 0 or longest_end[i - 1] <= n.start:
            kept.append(n)
    return sorted([*melody, *kept], key=lambda n: (n.start, n.pitch))
