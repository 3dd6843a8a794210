"""MIDI at the edges: read a user's file into a ``Song``, write the harmonized result.

Reading (``read_song``):
- the beat grid comes from the file's own tempo map and time signatures, in ticks: step k sits at tick
  ``k * resolution / 4`` and is mapped to seconds through the tempo map, so tempo changes are exact;
- bars follow the time-signature changes (a bar of ``num/den`` spans ``num * 16 / den`` 16th steps).
  A change that does not fall on a bar line starts a new bar there (the bar before it is left short).
  No time signature means 4/4 (the MIDI default). An unmarked pickup is not guessed: bar 1 starts at
  tick 0, as the file says;
- beats: one per denominator unit, except compound meters (6/8, 9/8, 12/8) that use dotted quarters;
- the melody is a track named like a melody (MELODY, lead, vocal, voice, solo), else the most
  melody-like pitched track (``melody_score``), else the one the user names; a polyphonic melody is
  reduced to its top line. A track named BRIDGE becomes ``Song.bridge``; other pitched tracks are kept in
  ``Song.others`` (a chord track there is read by ``structure.label_song``).

Writing (``write_harmonized``) appends tracks to the original file: mido re-encodes the original tracks
message for message (notes, channels, programs, tempo map, meter, sysex; the melody is never altered),
and the added tracks are encoded to bytes here (mido's per-message validation was the slow part).
pretty_midi (for reading and the tempo map) and mido are imported inside the functions.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..chords import PITCH_NAMES, Chord
from ..errors import StripeError
from ..song import STEPS_PER_QUARTER, ChordSpan, Grid, Key, Note, Song

MAX_BYTES = 20 * 1024 * 1024  # a 20 MB MIDI file is far beyond any song; refuse before parsing
MAX_NOTES = 100_000  # POP909 songs hold 2k-6k notes
MAX_EVENTS = 500_000  # MIDI events of all kinds; parsing costs ~15 us and ~300 B each, so refused up front
MAX_TRACKS = 1024  # hundreds of tracks read fine (tested); more is a broken or generated file
MIN_BPM, MAX_BPM = 5.0, 1000.0  # outside this the file's timing is corrupt, not musical
MAX_STEPS = 100_000  # 16th steps (~3.5 h of 4/4 at 120 bpm); time and memory grow linearly with it

_MELODY_NAME = re.compile(r"melod|lead|vocal|voice|vox|solo|sing", re.IGNORECASE)
_BRIDGE_NAME = re.compile(r"^\s*bridge\s*$", re.IGNORECASE)


# ----------------------------------------------------------------------------------------------- reading


def _vlq_at(data: bytes, i: int, end: int) -> tuple[int, int]:
    value = 0
    while i < end:
        b = data[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    return value, i


def count_events(data: bytes, max_notes: int = MAX_NOTES, max_events: int = MAX_EVENTS) -> tuple[int, int]:
    """(note-ons, events) in a MIDI file's bytes, by a scan of the track chunks that stops as soon as either
    passes its cap (so a 20 MB file of notes costs ~0.1 s here instead of minutes and gigabytes in mido).
    Garbage ends the scan early: the real parser reports it."""
    notes = events = 0
    if data[:4] != b"MThd" or len(data) < 14:
        return 0, 0
    pos, size = 8 + int.from_bytes(data[4:8], "big"), len(data)
    while pos + 8 <= size:
        kind, length = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
        i, end = pos + 8, min(pos + 8 + length, size)
        running = 0
        while kind == b"MTrk" and i < end:
            _, i = _vlq_at(data, i, end)  # delta time
            if i >= end:
                break
            status = data[i]
            if status == 0xFF:  # meta: type, length, data
                n, i = _vlq_at(data, i + 2, end)
                i += n
            elif status in (0xF0, 0xF7):  # sysex
                n, i = _vlq_at(data, i + 1, end)
                i += n
            else:
                if status & 0x80:
                    running, i = status, i + 1
                elif not running:
                    break  # data byte without a status: corrupt, left to the parser
                high = running & 0xF0
                if high == 0x90 and i + 1 < end and data[i + 1]:
                    notes += 1
                i += 1 if high in (0xC0, 0xD0) else 2
            events += 1
            if notes > max_notes or events > max_events:
                return notes, events
        pos = end
    return notes, events


def _load_pretty_midi(path: Path, max_bytes: int, max_notes: int = MAX_NOTES, max_events: int = MAX_EVENTS):
    """Checks on the path, then parse; every failure is a one-line StripeError naming the file."""
    import pretty_midi

    if not path.exists():
        raise StripeError("no such file", path)
    if path.is_dir():
        raise StripeError("is a folder, not a MIDI file", path)
    size = path.stat().st_size
    if size == 0:
        raise StripeError("empty file (0 bytes), not a MIDI file", path)
    if size > max_bytes:
        raise StripeError(f"file is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit", path)
    _check_time_division(path)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise StripeError(f"cannot read file: {exc.strerror}", path) from exc
    notes, events = count_events(data, max_notes, max_events)
    if notes > max_notes:
        raise StripeError(f"more than {max_notes} notes, over the limit (refused before parsing)", path)
    if events > max_events:
        raise StripeError(f"more than {max_events} MIDI events, over the limit (refused before parsing)", path)
    del data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about odd but readable files
            return pretty_midi.PrettyMIDI(str(path))
    except PermissionError as exc:
        raise StripeError("cannot read file: permission denied", path) from exc
    except Exception as exc:  # mido/pretty_midi raise many types on garbage
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StripeError(f"not a readable MIDI file ({detail})", path) from exc


def _check_time_division(path: Path) -> None:
    """SMPTE time division (frames per second x ticks per frame, a negative division) is legal MIDI that
    pretty_midi misreads as ticks per quarter note (it then fails on nonsense times): say so plainly."""
    try:
        with open(path, "rb") as f:
            head = f.read(14)
    except PermissionError as exc:
        raise StripeError("cannot read file: permission denied", path) from exc
    if len(head) == 14 and head[:4] == b"MThd" and head[12] & 0x80:
        fps, per_frame = 256 - head[12], head[13]
        raise StripeError(f"SMPTE time division ({fps} frames/s x {per_frame} ticks/frame) is not supported; "
                          "re-save the file with ticks per quarter note (PPQ)", path)


def _has_zero_length_notes_only(path: Path) -> bool:
    """pretty_midi silently drops notes whose on and off share a tick; tell that case apart."""
    import mido

    try:
        mid = mido.MidiFile(str(path))
    except Exception:
        return False
    return any(m.type == "note_on" and m.velocity > 0 for track in mid.tracks for m in track)


def _tick_table(pm, last_tick: int) -> np.ndarray | None:
    """pretty_midi's own tick -> seconds array, covering ``last_tick`` (None if this pretty_midi hides it)."""
    pm.tick_to_time(int(last_tick))  # extends the table once, to the largest tick we need
    table = getattr(pm, "_PrettyMIDI__tick_to_time", None)
    return table if isinstance(table, np.ndarray) and len(table) > last_tick else None


def _ticks_to_seconds(pm, ticks: np.ndarray) -> np.ndarray:
    """Seconds of (possibly fractional) ticks through the tempo map; exact, as tempo is constant per tick.

    Vectorised over pretty_midi's tick table (one lookup per step was a Python loop: 0.1 s per 10k steps);
    the same numbers as ``pm.tick_to_time`` with linear interpolation between ticks.
    """
    lo = np.floor(ticks).astype(np.int64)
    if len(lo) == 0:
        return np.zeros(0)
    table = _tick_table(pm, int(lo.max()) + 1)
    if table is not None:
        base, nxt = table[lo], table[lo + 1]
        return np.where(ticks == lo, base, base + (ticks - lo) * (nxt - base))
    cache: dict[int, float] = {}

    def at(t: int) -> float:
        if t not in cache:
            cache[t] = float(pm.tick_to_time(int(t)))
        return cache[t]

    out = np.empty(len(ticks), dtype=np.float64)
    for i, (x, f) in enumerate(zip(ticks, lo, strict=True)):
        frac = x - f
        out[i] = at(f) if frac == 0 else at(f) + frac * (at(f + 1) - at(f))
    return out


def _beat_length(num: int, den: int) -> int:
    """Steps per beat: the denominator unit, or a dotted quarter in compound meters (6/8, 9/8, 12/8)."""
    if den == 8 and num % 3 == 0 and num > 3:
        return 6
    return max(1, 16 // den) if den <= 16 else 1


def _bar_layout(changes: list[tuple[int, int, int]], end_step: int):
    """Bars and beats from ``(step, num, den)`` meter changes, covering at least ``end_step`` steps."""
    bar_starts: list[int] = []
    beat_starts: list[int] = []
    used: list[tuple[int, int, int]] = []
    pos = 0
    for i, (step, num, den) in enumerate(changes):
        if step >= max(end_step, 1) and i > 0:
            break  # meter changes after the music ends are irrelevant
        seg_end = changes[i + 1][0] if i + 1 < len(changes) else math.inf
        bar_len = max(1, round(num * 16 / den))
        beat_len = _beat_length(num, den)
        used.append((step, num, den))
        pos = step
        while pos < seg_end and pos < end_step:
            bar_starts.append(pos)
            bar_end = min(pos + bar_len, seg_end)  # a change off the bar line cuts this bar short
            beat_starts.extend(range(pos, bar_end, beat_len))
            pos = bar_end
    return bar_starts, beat_starts, used, pos


def _meter_changes(pm) -> list[tuple[int, int, int]]:
    """``(step, num, den)`` time-signature changes, starting with the MIDI default 4/4 at step 0."""
    res = pm.resolution
    changes = {0: (4, 4)}
    for ts in sorted(pm.time_signature_changes, key=lambda t: t.time):
        if ts.numerator <= 0 or ts.denominator <= 0:
            continue
        step = round(pm.time_to_tick(ts.time) * STEPS_PER_QUARTER / res)
        changes[step] = (int(ts.numerator), int(ts.denominator))
    return [(s, n, d) for s, (n, d) in sorted(changes.items())]


def build_grid(pm, end_tick: int) -> Grid:
    """The file's own 16th-note grid up to ``end_tick`` (rounded up to a bar end)."""
    res = pm.resolution
    end_step = max(1, math.ceil(end_tick * STEPS_PER_QUARTER / res))
    bar_starts, beat_starts, used, n_steps = _bar_layout(_meter_changes(pm), end_step)
    ticks = np.arange(n_steps + 1, dtype=np.float64) * res / STEPS_PER_QUARTER
    step_times = _ticks_to_seconds(pm, ticks)
    return Grid(step_times, bar_starts, beat_starts, used)


def _quantize(notes, grid: Grid) -> list[Note]:
    """pretty_midi notes (seconds) -> grid notes; a note that shrinks to nothing keeps one step."""
    if not notes:
        return []
    starts = grid.time_to_step([n.start for n in notes])
    ends = grid.time_to_step([n.end for n in notes])
    out = []
    last = grid.n_steps
    for n, s, e in zip(notes, starts, ends, strict=True):
        s = int(min(s, last - 1))
        e = int(max(e, s + 1))
        out.append(Note(s, e, int(n.pitch), int(n.velocity)))
    out.sort(key=lambda x: (x.start, -x.pitch))
    return out


def skyline(notes: list[Note]) -> list[Note]:
    """Top line of a polyphonic part: highest note at each onset; a lower note that starts under a
    sounding higher one is dropped; a note still sounding when the next melody note starts is cut."""
    out: list[Note] = []
    for n in sorted(notes, key=lambda x: (x.start, -x.pitch)):
        if out and n.start == out[-1].start:
            continue  # same onset, lower pitch
        if out and n.start < out[-1].end:
            if n.pitch < out[-1].pitch:
                continue
            out[-1] = replace(out[-1], end=n.start)
        out.append(n)
    return out


def melody_score(notes: list[Note]) -> float:
    """How melody-like a part is: mostly monophonic (weight 3), high (+1 per octave above C4), busy."""
    if not notes:
        return -math.inf
    ordered = sorted(notes, key=lambda x: (x.start, x.end))
    overlapped, max_end = 0, -1
    for n in ordered:
        if n.start < max_end - 1:  # one step of legato overlap still counts as monophonic
            overlapped += 1
        max_end = max(max_end, n.end)
    mono = 1.0 - overlapped / len(notes)
    mean_pitch = float(np.mean([n.pitch for n in notes]))
    return 3.0 * mono + (mean_pitch - 60.0) / 12.0 + 0.5 * math.log10(len(notes))


def _track_labels(instruments) -> list[str]:
    """Display names, unique: the track name, or ``track N`` (N = index in the file's instrument list)."""
    labels = []
    seen: set[str] = set()
    for i, inst in enumerate(instruments):
        label = inst.name.strip() or f"track {i}"
        if label in seen:
            label = f"{label} #{i}"
        seen.add(label)
        labels.append(label)
    return labels


def describe_tracks(instruments) -> str:
    """One line listing the tracks, for error messages."""
    labels = _track_labels(instruments)
    parts = []
    for i, (inst, label) in enumerate(zip(instruments, labels, strict=True)):
        kind = "drums" if inst.is_drum else f"{len(inst.notes)} notes"
        parts.append(f"{i}: {label!r} ({kind})")
    return "; ".join(parts) if parts else "none"


def _choose_melody(instruments, labels, quantized, melody_track, path) -> int:
    """Index of the melody instrument (see module docstring for the rule)."""
    if melody_track is not None:
        index = None
        text = str(melody_track).strip()
        digits = text.lstrip("-")
        if isinstance(melody_track, int) or (digits.isascii() and digits.isdigit() and len(digits) <= 9):
            index = int(text)
            if not 0 <= index < len(instruments):
                index = None
        else:
            lowered = text.lower()
            for i, (inst, label) in enumerate(zip(instruments, labels, strict=True)):
                if lowered in (label.lower(), inst.name.strip().lower()):
                    index = i
                    break
        if index is None:
            raise StripeError(
                f"no track {str(melody_track)[:40]!r}; tracks are: {describe_tracks(instruments)}", path
            )
        if instruments[index].is_drum:
            raise StripeError(f"track {melody_track!r} is a drum track, not a melody", path)
        if not quantized[index]:
            raise StripeError(f"track {melody_track!r} has no notes", path)
        return index
    pitched = [i for i, inst in enumerate(instruments) if not inst.is_drum and quantized[i]]
    named = [i for i in pitched if _MELODY_NAME.search(instruments[i].name)]
    pool = named or [i for i in pitched if not _BRIDGE_NAME.match(instruments[i].name)] or pitched
    return max(pool, key=lambda i: (melody_score(quantized[i]), -i))


def melody_track_arg(value: str | None) -> str | int | None:
    """``--melody-track`` text: digits are a track index, anything else a track name."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if text and len(text) <= 9 and text.isascii() and text.isdigit() else value


GRID_CHOICES = ("auto", "file", "notes")
MIN_NOTES_TO_TRACK = 8  # --grid auto keeps the file's grid below this many notes


def notes_grid(pm, instruments) -> tuple[Grid, float]:
    """A 16th grid on beats and downbeats inferred from the notes (``beats.infer_beats``): every note of
    the file gives onsets, the pitched ones the downbeat evidence; 3 beats per bar if the file says so."""
    from ..beats import infer_beats

    notes = [n for inst in instruments if not inst.is_drum for n in inst.notes if n.end > n.start]
    notes.sort(key=lambda n: (n.start, n.pitch))
    on = np.array([n.start for n in notes])
    dur = np.array([n.end - n.start for n in notes])
    meters = sorted(pm.time_signature_changes, key=lambda t: t.time)
    per_bar = 3 if meters and meters[0].numerator == 3 else 4
    _, tempi = pm.get_tempo_changes()
    beats = infer_beats(on, dur, np.array([n.pitch for n in notes]), np.array([n.velocity for n in notes]),
                        tempo_bpm=float(tempi[0]) if len(tempi) else None, beats_per_bar=per_bar,
                        start=0.0, end=float((on + dur).max()))
    grid = Grid.from_beats(beats.times, beats.downbeats)
    grid.time_signatures = [(0, per_bar, 4)]
    return grid, beats.tempo_bpm


def one_beat_bars(grid: Grid) -> bool:
    """True when every bar of the file's grid is one beat long (a 1/4 time signature: no bar lines at all,
    as in POP909's files, whose 16th grid can sit half a beat off the music's beats)."""
    return len(grid.bar_starts) > 4 and len(grid.bar_starts) == len(grid.beat_starts)


def choose_grid(pm, instruments, grid: str) -> bool:
    """True when the grid is to be inferred from the notes: ``notes``, or ``auto`` and the file's onsets
    are not on its tick grid (``beats.is_quantized``; a track of 8 notes or more wholly on the grid also
    makes the file a quantized one, and a file of under 8 notes keeps its grid)."""
    if grid not in GRID_CHOICES:
        raise StripeError(f"--grid must be one of {', '.join(GRID_CHOICES)}, not {grid!r}")
    if grid != "auto":
        return grid == "notes"
    from ..beats import is_quantized

    per_track = [_times_to_ticks(pm, np.array([n.start for n in inst.notes if n.end > n.start]))
                 for inst in instruments]
    per_track = [t for t in per_track if len(t)]
    if sum(len(t) for t in per_track) < MIN_NOTES_TO_TRACK:  # too few notes to say, or to find beats in
        return False
    if is_quantized(np.concatenate(per_track), pm.resolution):
        return False
    # one track of 8 notes or more wholly on the grid: the file was written on its grid (other tracks
    # may be loose on purpose, e.g. strummed pads)
    return not any(len(t) >= 8 and is_quantized(t, pm.resolution, min_share=0.95) for t in per_track)


def read_song(
    path: str | Path,
    melody_track: str | int | None = None,
    max_bytes: int = MAX_BYTES,
    max_notes: int = MAX_NOTES,
    max_tracks: int = MAX_TRACKS,
    max_steps: int = MAX_STEPS,
    grid: str = "auto",
) -> Song:
    """Read a type 0 or type 1 MIDI file into a ``Song`` on a 16th-note grid.

    The grid is the file's own (tempo map and time signatures) when its notes sit on its tick grid, or
    ``grid="file"``; otherwise (or ``grid="notes"``) beats and downbeats are inferred from the notes. With
    ``auto``, a file whose bars are one beat long (a 1/4 meter: no bar lines) has them inferred too.
    ``Song.grid_source`` says which: ``file`` or ``notes``. ``melody_track`` (a track name, case-insensitive, or an index in
    the file's instrument list) overrides the automatic choice. Any problem with the file raises
    ``StripeError(message, path)``.
    """
    if grid not in GRID_CHOICES:
        raise StripeError(f"--grid must be one of {', '.join(GRID_CHOICES)}, not {grid!r}")
    path = Path(path)
    pm = _load_pretty_midi(path, max_bytes, max_notes)
    instruments = pm.instruments
    if len(instruments) > max_tracks:
        raise StripeError(f"{len(instruments)} tracks, over the limit of {max_tracks}", path)
    n_notes = sum(len(inst.notes) for inst in instruments)
    if n_notes > max_notes:
        raise StripeError(f"{n_notes} notes, over the limit of {max_notes}", path)
    if n_notes == 0:
        if _has_zero_length_notes_only(path):
            raise StripeError("every note has zero length (note-on and note-off at the same tick)", path)
        raise StripeError("MIDI file has no notes", path)
    if all(inst.is_drum for inst in instruments if inst.notes):
        raise StripeError("only drum tracks, no melody to harmonize", path)

    end_time = max(n.end for inst in instruments for n in inst.notes)
    times, tempi = pm.get_tempo_changes()
    for t, bpm in zip(times, tempi, strict=True):
        if t <= end_time and not MIN_BPM <= bpm <= MAX_BPM:
            raise StripeError(
                f"tempo {bpm:.6g} bpm at {t:.2f} s is outside {MIN_BPM:g}-{MAX_BPM:g} bpm "
                "(the file's timing looks corrupt)",
                path,
            )
    end_tick = pm.time_to_tick(end_time)
    # the last onset may round up past the last note's end (an overlapped note that pretty_midi cuts
    # short): the grid must hold the step it rounds to, or that note would be pulled back a whole step
    last_onset = pm.time_to_tick(max((n.start for inst in instruments for n in inst.notes if n.end > n.start),
                                      default=0.0))
    end_tick = max(end_tick, (round(last_onset * STEPS_PER_QUARTER / pm.resolution) + 1)
                   * pm.resolution / STEPS_PER_QUARTER)
    end_step = math.ceil(end_tick * STEPS_PER_QUARTER / pm.resolution)
    if end_step > max_steps:  # a corrupt delta time or a tiny resolution: refuse before building the grid
        raise StripeError(f"the music lasts {end_step} 16th steps ({end_time / 60:.0f} min), over the limit "
                          f"of {max_steps} steps", path)
    n_pitched = sum(len(i.notes) for i in instruments if not i.is_drum)
    inferred = n_pitched > 0 and choose_grid(pm, instruments, grid)
    try:
        song_grid, found_bpm = notes_grid(pm, instruments) if inferred else (build_grid(pm, end_tick), None)
    except IndexError:  # pretty_midi's own tick limit, reached by the last bar of an extreme resolution
        raise StripeError("the file's last bar reaches past pretty_midi's tick limit (resolution "
                          f"{pm.resolution} is too fine for a song this long)", path) from None
    if grid == "auto" and not inferred and n_pitched >= MIN_NOTES_TO_TRACK and one_beat_bars(song_grid):
        inferred = True  # a grid with no bar lines is a machine's, not the music's: infer beats and bars
        song_grid, found_bpm = notes_grid(pm, instruments)
    if song_grid.n_steps > max_steps:
        raise StripeError(f"the music lasts {song_grid.n_steps} 16th steps on the beats found in it, over the "
                          f"limit of {max_steps} steps", path)
    source = "notes" if inferred else "file"
    grid = song_grid

    labels = _track_labels(instruments)
    quantized = [[] if inst.is_drum else _quantize([n for n in inst.notes if n.end > n.start], grid)
                 for inst in instruments]
    melody_index = _choose_melody(instruments, labels, quantized, melody_track, path)
    bridge: list[Note] = []
    others: dict[str, list[Note]] = {}
    for i, inst in enumerate(instruments):
        if i == melody_index or inst.is_drum or not quantized[i]:
            continue
        if not bridge and _BRIDGE_NAME.match(inst.name):
            bridge = quantized[i]
        else:
            others[labels[i]] = quantized[i]
    return Song(
        name=path.stem,
        grid=grid,
        melody=skyline(quantized[melody_index]),
        bridge=bridge,
        chords=None,
        key=None,
        tempo_bpm=found_bpm if found_bpm is not None else float(tempi[0]) if len(tempi) else 120.0,
        melody_track=labels[melody_index],
        others=others,
        grid_source=source,
    )


# ----------------------------------------------------------------------------------------------- writing


def check_output(source: Path | None, out: Path, force: bool):
    """The output guard's checks for one file (see ``outputs.py``); returns the guard to write through."""
    from .outputs import Outputs

    return Outputs([out], inputs=[source], force=force)


def voice_chord(chord: Chord, ceiling: int) -> list[int]:
    """Block-chord pitches strictly below ``ceiling`` (the lowest melody pitch around the chord).

    Chord tones in close position in the octave below ``min(ceiling, 72)``, plus the bass (root, or the
    slash bass) in octave 3 (MIDI 48-59), dropped an octave if it would not sit under the chord tones.
    """
    if chord.is_none:
        return []
    top = min(ceiling, 72)
    tones = sorted(top - 1 - ((top - 1 - pc) % 12) for pc in chord.pitch_classes)
    bass_pc = chord.root if chord.bass is None else chord.bass
    bass = 48 + bass_pc
    while bass >= tones[0] and bass - 12 >= 0:
        bass -= 12
    return [p for p in [bass, *tones] if 0 <= p < ceiling]


def _free_channels(mid) -> list[int]:
    used = {m.channel for track in mid.tracks for m in track if hasattr(m, "channel")}
    return [c for c in range(16) if c != 9 and c not in used]


def pick_channels(mid, need: int) -> list[tuple[int, bool]]:
    """``need`` (channel, set_program) pairs for the added tracks, never refusing.

    Best a channel the input never uses; then one that holds no notes (only controllers or programs);
    when all 15 melodic channels hold notes, the added tracks share the one with the fewest notes and
    play with its instrument (no program change, so its own part keeps its sound). The added tracks may
    share one channel with each other (both are piano)."""
    used, notes = set(), [0] * 16
    for track in mid.tracks:
        for m in track:
            if hasattr(m, "channel"):
                used.add(m.channel)
                if m.type == "note_on" and m.velocity:
                    notes[m.channel] += 1
    melodic = [c for c in range(16) if c != 9]
    free = [(c, True) for c in melodic if c not in used]
    quiet = [(c, True) for c in melodic if c in used and not notes[c]]
    picked = (free + quiet)[:need]
    if not picked:
        picked = [(min(melodic, key=lambda c: (notes[c], c)), False)]
    return (picked * need)[:need]


def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity (delta times, meta lengths)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _encode_track(name: str, events: list[tuple[int, int, bytes]]) -> bytes:
    """Absolute-tick ``(tick, order, message bytes)`` events -> one MTrk chunk, with running status as mido
    writes it. Encoded here rather than through mido messages: mido validates every field of every message
    (~25 us each), which dominated writing a long accompaniment (tens of thousands of notes)."""
    title = name.encode("latin-1")
    data = bytearray(b"\x00\xff\x03" + _vlq(len(title)) + title)
    now, running = 0, None
    for tick, _order, body in sorted(events, key=lambda e: (e[0], e[1])):
        data += _vlq(tick - now)
        now = tick
        if body[0] >= 0xF0:  # meta: no running status across it
            data += body
            running = None
        elif body[0] == running:
            data += body[1:]
        else:
            data += body
            running = body[0]
    data += b"\x00\xff\x2f\x00"  # end of track
    return b"MTrk" + len(data).to_bytes(4, "big") + bytes(data)


def _marker(text: str) -> bytes:
    raw = text.encode("latin-1", errors="replace")
    return b"\xff\x06" + _vlq(len(raw)) + raw


def _save_with_tracks(mid, chunks: list[bytes], path) -> None:
    """The source's tracks as mido encodes them, then the pre-encoded ``chunks``, in one file."""
    import io

    buf = io.BytesIO()
    mid.save(file=buf)
    data = buf.getvalue()
    n_tracks = int.from_bytes(data[10:12], "big") + len(chunks)
    with open(path, "wb") as f:
        f.write(data[:10] + n_tracks.to_bytes(2, "big") + data[12:])
        for chunk in chunks:
            f.write(chunk)


def _times_to_ticks(pm, seconds: np.ndarray) -> np.ndarray:
    """``pm.time_to_tick`` over an array (same rounding: the nearest tick, ties to the later one;
    past the table's end, extrapolated with the last tempo)."""
    seconds = np.atleast_1d(np.asarray(seconds, dtype=np.float64))
    table = getattr(pm, "_PrettyMIDI__tick_to_time", None)
    if not isinstance(table, np.ndarray) or len(table) == 0:  # another pretty_midi: the slow, sure way
        return np.array([pm.time_to_tick(float(s)) for s in seconds], dtype=np.int64)
    tick = np.searchsorted(table, seconds, side="left")
    out = tick.astype(np.float64)
    past = tick == len(table)
    if past.any():
        last = len(table) - 1
        out[past] = np.round(last + (seconds[past] - table[last]) / pm._tick_scales[-1][1])
    inner = np.flatnonzero(~past & (tick > 0))
    t = tick[inner]
    closer = np.abs(seconds[inner] - table[t - 1]) < np.abs(seconds[inner] - table[t])
    out[inner[closer]] -= 1
    return out.astype(np.int64)


def write_harmonized(
    source_path: str | Path,
    out_path: str | Path,
    chords: list[ChordSpan],
    grid: Grid,
    accompaniment: list[Note] | None = None,
    force: bool = False,
    chord_velocity: int = 60,
    chord_program: int = 0,
    accompaniment_program: int = 0,
    melody: list[Note] | None = None,
    key: Key | None = None,
    tempo_map=None,
) -> Path:
    """Copy the source MIDI, untouched, plus a ``Chords`` track and an optional ``Accompaniment`` track.

    Chord symbols are written as marker meta events in the Chords track. Steps are converted to the
    source's ticks through ``grid.step_to_time`` and the source tempo map; with a ``tempo_map``
    (``tempo_map.TempoMap``, when the grid was inferred from the notes) every event of the source is
    first moved onto that map, keeping its time in seconds, and the added tracks follow it. ``melody``
    (for voicing the chords under it) defaults to the melody ``read_song`` finds in the source. Writes atomically; refuses
    to overwrite an existing file (or the input) unless ``force``.
    """
    source, out = Path(source_path), Path(out_path)
    with check_output(source, out, force) as guard:
        guard.stage(out, harmonized_writer(source, chords, grid, accompaniment, chord_velocity, chord_program,
                                           accompaniment_program, melody, tempo_map, key))
    return out


def harmonized_writer(
    source: Path,
    chords: list[ChordSpan],
    grid: Grid,
    accompaniment: list[Note] | None = None,
    chord_velocity: int = 60,
    chord_program: int = 0,
    accompaniment_program: int = 0,
    melody: list[Note] | None = None,
    tempo_map=None,
    key: Key | None = None,
):
    """What ``write_harmonized`` writes, as a function of the path to write it to (for ``Outputs.stage``)."""
    import mido
    import pretty_midi

    source = Path(source)
    if melody is None:
        melody = read_song(source).melody
    try:
        mid = mido.MidiFile(str(source))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(str(source))
    except Exception as exc:
        raise StripeError(f"not a readable MIDI file ({exc})", source) from exc

    def to_tick(steps) -> np.ndarray:
        seconds = grid.step_to_time(np.asarray(steps, dtype=np.float64))
        return _times_to_ticks(pm, seconds) if tempo_map is None else tempo_map.seconds_to_ticks(seconds)

    channels = pick_channels(mid, 1 + (accompaniment is not None))
    if mid.type == 0:
        mid.type = 1  # the single track keeps the tempo map; new tracks follow it
    elif mid.type == 2:
        raise StripeError("type 2 MIDI files (independent sequences) are not supported", source)
    if tempo_map is not None:  # every event of the source moved onto the map, at its time in seconds
        from .tempo_map import retime

        mid = retime(mid, lambda ticks: _ticks_to_seconds(pm, ticks), tempo_map)
    chord_velocity = int(min(127, max(1, chord_velocity)))

    # ---- chords: block chords under the melody, symbols as markers
    ch, set_program = channels[0]
    events: list[tuple[int, int, bytes]] = [(0, 0, bytes([0xC0 | ch, chord_program & 0x7F]))] if set_program else []
    mel_start = np.array([n.start for n in melody], dtype=np.int64)
    mel_end = np.array([n.end for n in melody], dtype=np.int64)
    mel_pitch = np.array([n.pitch for n in melody], dtype=np.int64)
    low_all = int(mel_pitch.min()) if len(mel_pitch) else 72
    spans = [span for span in chords if span.end > span.start]
    span_ticks = to_tick([x for span in spans for x in (span.start, span.end)]).reshape(-1, 2)
    for span, (start, end) in zip(spans, span_ticks, strict=True):
        events.append((int(start), 1, _marker(chord_symbol(span.chord, key))))
        if span.chord.is_none or end <= start:
            continue
        around = mel_pitch[(mel_start < span.end) & (mel_end > span.start)]
        for p in voice_chord(span.chord, int(around.min()) if len(around) else low_all):
            events.append((int(start), 3, bytes([0x90 | ch, p, chord_velocity])))
            events.append((int(end), 2, bytes([0x80 | ch, p, 0])))
    chunks = [_encode_track("Chords", events)]

    # ---- accompaniment
    if accompaniment is not None:
        ch, set_program = channels[1]
        events = [(0, 0, bytes([0xC0 | ch, accompaniment_program & 0x7F]))] if set_program else []
        if accompaniment:
            ticks = to_tick([x for n in accompaniment for x in (n.start, n.end)]).reshape(-1, 2)
            for n, (start, end) in zip(accompaniment, ticks, strict=True):
                if end <= start:
                    end = start + 1
                vel = int(min(127, max(1, n.velocity)))
                events.append((int(start), 3, bytes([0x90 | ch, n.pitch & 0x7F, vel])))
                events.append((int(end), 2, bytes([0x80 | ch, n.pitch & 0x7F, 0])))
        chunks.append(_encode_track("Accompaniment", events))

    return lambda tmp: _save_with_tracks(mid, chunks, tmp)


def chord_symbol(chord: Chord, key: Key | None = None) -> str:
    """Lead-sheet text for markers and lead sheets: ``Am7``, ``F#``, ``C/E``, ``N.C.``; spelled for
    ``key`` when given (``Db``, not ``C#``, in F minor: ``spelling.pitch_name``)."""
    from ..spelling import pitch_name

    if chord.is_none:
        return "N.C."
    suffix = {
        "maj": "", "min": "m", "7": "7", "maj7": "maj7", "min7": "m7", "dim": "dim", "aug": "aug",
        "sus2": "sus2", "sus4": "sus4", "maj6": "6", "min6": "m6", "hdim7": "m7b5", "dim7": "dim7",
        "minmaj7": "mmaj7", "sus4(b7)": "7sus4", "9": "9", "maj9": "maj9", "min9": "m9",
    }.get(chord.quality, chord.quality)
    text = pitch_name(chord.root, key) + suffix
    if chord.bass is not None and chord.bass != chord.root:
        text += "/" + pitch_name(chord.bass, key)
    return text


# music21 chord kinds for our qualities (MusicXML <kind> values)
_M21_KIND = {
    "maj": "major", "min": "minor", "7": "dominant-seventh", "maj7": "major-seventh",
    "min7": "minor-seventh", "dim": "diminished", "aug": "augmented", "sus2": "suspended-second",
    "sus4": "suspended-fourth", "maj6": "major-sixth", "min6": "minor-sixth",
    "hdim7": "half-diminished-seventh", "dim7": "diminished-seventh", "minmaj7": "minor-major-seventh",
    "sus4(b7)": "suspended-fourth", "9": "dominant-ninth", "maj9": "major-ninth", "min9": "minor-ninth",
}


def _m21_name(pc: int) -> str:
    return PITCH_NAMES[pc].replace("b", "-")  # music21 spells flats with '-'


def write_musicxml(song: Song, chords: list[ChordSpan] | None, out_path: str | Path, force: bool = False,
                   key: Key | None = None, title: str | None = None) -> Path:
    """A lead sheet (melody + chord symbols) as MusicXML: see ``leadsheet.write_lead_sheet``."""
    from .leadsheet import write_lead_sheet

    return write_lead_sheet(song, chords, out_path, key=key, title=title, force=force)


def _nominal_meter(grid: Grid, step: int) -> tuple[int, int]:
    current = (4, 4)
    for s, num, den in grid.time_signatures:
        if s <= step:
            current = (num, den)
    return current


def _meter_for_length(steps: int) -> tuple[int, int]:
    """A time signature for a bar of ``steps`` 16ths (short bars left by off-bar meter changes)."""
    if steps % 4 == 0:
        return steps // 4, 4
    if steps % 2 == 0:
        return steps // 2, 8
    return steps, 16
