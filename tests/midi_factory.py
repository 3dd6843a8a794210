"""Tiny MIDI files for tests, written with mido in exact ticks (tempo maps, meters, type 0/1, drums).

Import from any test as ``from midi_factory import make_midi, Track, ...`` (tests/ is on sys.path
through pytest's rootdir-relative imports of test modules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mido

RES = 480  # ticks per quarter used by default


@dataclass
class Track:
    """A track: notes as ``(start_tick, end_tick, pitch[, velocity])``."""

    name: str
    notes: list[tuple] = field(default_factory=list)
    program: int = 0
    drums: bool = False
    channel: int | None = None


def steps(notes, resolution: int = RES) -> list[tuple]:
    """Notes given in 16th steps ``(start, end, pitch)`` -> ticks."""
    q = resolution // 4
    return [(s * q, e * q, *rest) for s, e, *rest in notes]


def _abs_to_track(events, name: str | None) -> mido.MidiTrack:
    track = mido.MidiTrack()
    if name is not None:
        track.append(mido.MetaMessage("track_name", name=name, time=0))
    now = 0
    for tick, _order, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def make_midi(
    path: str | Path,
    tracks: list[Track],
    *,
    resolution: int = RES,
    tempos: list[tuple[int, float]] | None = None,
    time_signatures: list[tuple[int, int, int]] | None = None,
    midi_type: int = 1,
) -> Path:
    """Write a MIDI file. ``tempos``: ``(tick, bpm)``; ``time_signatures``: ``(tick, num, den)``."""
    tempos = [(0, 120.0)] if tempos is None else tempos
    meta = []
    for tick, bpm in tempos:
        meta.append((tick, 0, mido.MetaMessage("set_tempo", tempo=max(1, round(60_000_000 / bpm)))))
    for tick, num, den in time_signatures or ():
        meta.append((tick, 0, mido.MetaMessage("time_signature", numerator=num, denominator=den)))
    per_track = []
    free = iter([c for c in range(16) if c != 9] * 100)
    for t in tracks:
        ch = 9 if t.drums else (t.channel if t.channel is not None else next(free))
        ev = [(0, 1, mido.Message("program_change", channel=ch, program=t.program))]
        for n in t.notes:
            start, end, pitch = n[:3]
            vel = n[3] if len(n) > 3 else 90
            ev.append((start, 3, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
            ev.append((end, 2, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
        per_track.append((t.name, ev))
    mid = mido.MidiFile(type=midi_type, ticks_per_beat=resolution)
    if midi_type == 0:
        merged = list(meta) + [e for _, ev in per_track for e in ev]
        mid.tracks.append(_abs_to_track(merged, per_track[0][0] if per_track else None))
    else:
        mid.tracks.append(_abs_to_track(meta, None))
        for name, ev in per_track:
            mid.tracks.append(_abs_to_track(ev, name))
    path = Path(path)
    mid.save(str(path))
    return path


def tick_to_seconds(tick: float, tempos: list[tuple[int, float]] | None, resolution: int = RES) -> float:
    """Independent tempo-map integration (no pretty_midi), to check the reader against."""
    tempos = sorted(tempos or [(0, 120.0)])
    if tempos[0][0] != 0:
        tempos = [(0, 120.0), *tempos]
    seconds, last_tick, last_bpm = 0.0, 0, tempos[0][1]
    for t, bpm in tempos[1:]:
        if t >= tick:
            break
        # mido stores the tempo as integer microseconds per quarter: use the same rounding
        seconds += (t - last_tick) * round(60_000_000 / last_bpm) / 1e6 / resolution
        last_tick, last_bpm = t, bpm
    return seconds + (tick - last_tick) * round(60_000_000 / last_bpm) / 1e6 / resolution


def melody_file(path, pitches=(60, 62, 64, 65, 67, 69, 71, 72), step_len: int = 4, name: str = "Melody",
                **kwargs) -> Path:
    """A one-track melody, ``step_len`` 16ths per note."""
    notes = [(i * step_len, (i + 1) * step_len, p) for i, p in enumerate(pitches)]
    return make_midi(path, [Track(name, steps(notes, kwargs.get("resolution", RES)))], **kwargs)


def song_file(path, bars: int = 4, **kwargs) -> Path:
    """Melody (quarter notes, C major scale up and down) + a block-chord piano (C, F, G, C per bar)."""
    res = kwargs.get("resolution", RES)
    scale = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 62]
    melody = [(i * 4, i * 4 + 4, scale[i % len(scale)] + 12) for i in range(bars * 4)]
    roots = [0, 5, 7, 0]
    piano = []
    for b in range(bars):
        root = 48 + roots[b % 4]
        for iv in (0, 4, 7):
            piano.append((b * 16, b * 16 + 16, root + iv))
    return make_midi(path, [Track("Melody", steps(melody, res)), Track("Piano", steps(piano, res))], **kwargs)


def song_folder(root, n_songs: int = 6, bars: int = 6, broken: bool = True) -> Path:
    """A ``stripe train --data`` folder of MIDI files: songs with a block-chord track at two depths, one
    melody-only song with a ``.chords.txt`` sibling, and (``broken``) one unreadable file."""
    root = Path(root)
    (root / "set" / "deeper").mkdir(parents=True, exist_ok=True)
    for i in range(n_songs):
        folder = root / "set" if i % 2 else root / "set" / "deeper"
        song_file(folder / f"song{i}.mid", bars=bars + i % 3)
    melody_file(root / "lead.mid", pitches=(60, 64, 67, 72, 71, 67, 65, 62) * 2)
    (root / "lead.chords.txt").write_text("# a lead sheet\n1:1 C\n2:1 G7\n3:1 Am\n4:1 F\n")
    if broken:
        (root / "broken.mid").write_bytes(b"MThd this is not MIDI")
    return root
