"""A MIDI tempo map that follows inferred beats, and a file re-timed onto it with every event kept in place.

When ``stripe harmonize`` inferred the beat grid from the notes (``beats.py``), the output file gets a new
tempo map: one tempo per beat, so that beat k of the music is beat k of the file (a DAW shows the bars
where the music has them), and time signatures that start a bar at each inferred downbeat (a pickup bar
first, when the music starts before its first downbeat). Every event of the input is moved to the tick
that has its time in seconds under the new map: notes keep their times within half a tick (well under
1 ms at the resolution used here).

Tick 0 is time 0: a stretch before the first beat shorter than half a beat joins the first beat (which is
then slower), a longer one is a beat of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESOLUTION = 1920  # ticks per beat: half a tick is 0.4 ms at 60 bpm


@dataclass
class TempoMap:
    resolution: int
    beat_times: np.ndarray  # seconds of beat k = tick k * resolution, from 0; as the rounded tempos give them
    tempos_us: np.ndarray  # microseconds per beat, one per beat interval (the last one continues)
    time_signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator)

    @classmethod
    def from_beats(cls, beat_times, downbeats, beats_per_bar: int = 4, resolution: int = RESOLUTION) -> TempoMap:
        """The map of beats at ``beat_times`` (seconds, increasing) with bar starts ``downbeats`` (flags)."""
        times = np.asarray(beat_times, dtype=np.float64)
        flags = np.asarray(downbeats, dtype=bool)
        if len(times) < 2 or np.any(np.diff(times) <= 0):
            raise ValueError("beat times must be at least two, strictly increasing")
        keep = times > 0
        times, flags = times[keep], flags[keep]
        if len(times) < 2:
            raise ValueError("fewer than two beats after time 0")
        period = times[1] - times[0]
        # whole beats before the first one, back towards 0, then the head [0, first)
        n_before = int(np.floor(times[0] / period - 1e-9))
        if n_before > 0:
            times = np.concatenate([times[0] - period * np.arange(n_before, 0, -1), times])
            flags = np.concatenate([np.zeros(n_before, dtype=bool), flags])
        if times[0] < 0.5 * period and len(times) > 2:  # a short head joins the first beat: [0, times[1])
            times = np.concatenate([[0.0], times[1:]])
        else:  # the head is a beat of its own, before the first one
            times = np.concatenate([[0.0], times])
            flags = np.concatenate([[False], flags])
        # now times[0] == 0; beat i spans [times[i], times[i + 1])
        tempos = np.maximum(1, np.round(np.diff(times) * 1e6)).astype(np.int64)
        exact = np.concatenate([[0.0], np.cumsum(tempos / 1e6)])
        return cls(resolution, exact, tempos, _signatures(flags, beats_per_bar, resolution))

    @classmethod
    def from_grid(cls, grid, resolution: int = RESOLUTION) -> TempoMap:
        """The map of a ``Grid``'s beats and bars (an inferred grid)."""
        beat_steps = list(grid.beat_starts)
        times = grid.step_times[beat_steps + [grid.n_steps]] if beat_steps[-1] < grid.n_steps else \
            grid.step_times[beat_steps]
        per_bar = grid.time_signatures[0][1] if grid.time_signatures else 4
        bars = set(grid.bar_starts)
        if len(grid.bar_starts) > 1 and grid.bar_starts[0] == 0:
            first_bar_beats = sum(1 for s in beat_steps if s < grid.bar_starts[1])
            if first_bar_beats < per_bar:  # a pickup: the file starts with a whole (partly empty) bar
                bars.discard(0)
        flags = [s in bars for s in beat_steps] + ([False] if len(times) > len(beat_steps) else [])
        return cls.from_beats(times, flags, per_bar, resolution)

    # ------------------------------------------------------------------------------------------ mapping

    def ticks_to_seconds(self, ticks) -> np.ndarray:
        t = np.asarray(ticks, dtype=np.float64) / self.resolution  # in beats
        n = len(self.tempos_us)
        i = np.clip(np.floor(t).astype(np.int64), 0, n - 1)
        return self.beat_times[i] + (t - i) * self.tempos_us[i] / 1e6

    def seconds_to_ticks(self, seconds) -> np.ndarray:
        s = np.asarray(seconds, dtype=np.float64)
        n = len(self.tempos_us)
        i = np.clip(np.searchsorted(self.beat_times, s, side="right") - 1, 0, n - 1)
        beats = i + (s - self.beat_times[i]) / (self.tempos_us[i] / 1e6)
        return np.maximum(0, np.round(beats * self.resolution)).astype(np.int64)

    def meta_events(self):
        """``(tick, mido MetaMessage)`` for the tempos (only where they change) and time signatures."""
        import mido

        out = []
        last = None
        for i, us in enumerate(self.tempos_us):
            if us != last:
                out.append((i * self.resolution, mido.MetaMessage("set_tempo", tempo=int(us))))
                last = us
        for tick, num, den in self.time_signatures:
            out.append((tick, mido.MetaMessage("time_signature", numerator=num, denominator=den)))
        return out


def _signatures(flags: np.ndarray, beats_per_bar: int, resolution: int) -> list[tuple[int, int, int]]:
    """Time signatures (n/4) so that every flagged beat starts a bar: a pickup bar first if needed, then a
    change wherever the bar length changes."""
    down = list(np.flatnonzero(flags))
    if not down:
        return [(0, beats_per_bar, 4)]
    out: list[tuple[int, int, int]] = []
    if down[0] > 0:
        out.append((0, int(down[0]), 4))
    for a, b in zip(down, down[1:] + [None], strict=True):
        length = beats_per_bar if b is None else int(b - a)
        if not out or out[-1][1] != length:
            out.append((int(a) * resolution, length, 4))
    return out


def retime(mid, source_seconds, tempo_map: TempoMap):
    """A copy of the mido file ``mid`` on ``tempo_map``: every event at the tick of its time in seconds
    (``source_seconds(ticks)`` gives the source's seconds of absolute ticks); the source's tempo and
    time-signature events are replaced by the map's, in the first track."""
    import mido

    out = mido.MidiFile(type=1, ticks_per_beat=tempo_map.resolution)  # type 2 is refused before this
    for index, track in enumerate(mid.tracks):
        absolute, now = [], 0
        for msg in track:
            now += msg.time
            absolute.append(now)
        ticks = np.asarray(absolute, dtype=np.float64)
        new = tempo_map.seconds_to_ticks(source_seconds(ticks)) if len(ticks) else np.zeros(0, dtype=np.int64)
        events = [(int(t), k, msg) for k, (t, msg) in enumerate(zip(new, track, strict=True))
                  if msg.type not in ("set_tempo", "time_signature", "end_of_track")]
        if index == 0:
            events = [(t, -1, m) for t, m in tempo_map.meta_events()] + events
        events.sort(key=lambda e: (e[0], e[1]))
        new_track = mido.MidiTrack()
        last = 0
        for tick, _k, msg in events:
            new_track.append(msg.copy(time=tick - last))
            last = tick
        end = int(new[-1]) if len(new) else 0
        new_track.append(mido.MetaMessage("end_of_track", time=max(0, end - last)))
        out.tracks.append(new_track)
    return out
