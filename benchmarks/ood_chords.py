"""Out-of-domain chords: stripe's chord stage against the HMM baseline on melodies that are not POP909.

stripe's chords beat the HMM baseline on POP909 (Chinese pop, 4/4). Do they on hymns and folk tunes in
3/4 and 6/8? Every melody here comes from music21's bundled corpus (no download, no GPU):

* **chorales**: ``corpus.getComposer('bach')``, 4-part scores only. Melody = the soprano (first part);
  reference = the four voices chordified, one chord per beat: the chordified sonority that sounds over most
  of the beat (ties to the earliest), reduced to root + major/minor with music21's ``root()`` and
  ``quality``. A sonority is *unknown* (left out of the accuracy, counted) when it has fewer than 3 pitch
  classes, is not a triad or seventh chord stacked in thirds (``isTriad``/``isSeventh``: passing-tone
  clusters), or is augmented (mostly a passing sonority in Bach); diminished counts as minor (as
  ``metrics``' major/minor family does). Reference key: music21's ``analyze('key')`` on all four voices.
* **lead sheets**: ABC tunes of ``ryansMammoth/``, ``nottingham-dataset/``, ``oneills1850/`` and
  ``miscFolk/`` whose quoted chord symbols (``"G"``, ``"Am"``, ``"D7"``) music21 reads as
  ``harmony.ChordSymbol``, plus ``leadSheet/*.mxl``; kept with >= 8 bars and a chord symbol in at least
  half of them. music21 10 ships very few: the two Nottingham tunes and the two MusicXML lead sheets, all
  4/4 (the other quoted strings of those books are fingerings, dynamics and section letters). Reference =
  the symbol in force over most of the beat; its family from its thirds above the written root (minor third
  without major third: minor, so dim is minor; a major third: major, so aug is major); sus, power chords
  and N.C. are unknown. Reference key: the ABC ``K:`` field when it is major or minor (modal tunes and the
  MusicXML lead sheets, which declare C major over chords in F, have none).
* **folk**: ABC tunes of the same folders *without* chord symbols, sampled evenly over 2/4, 3/4, 4/4, 6/8
  and the other meters (2/2, 9/8, ...). No reference chords: only the behaviour columns and the key
  against ``K:``.

Beats are the meter's beats as music21 counts them (a dotted quarter in 6/8, a half in 2/2). Each melody
is written ALONE to a MIDI file (quarter = one MIDI beat, ``--bpm``, the time signatures at their
offsets, a pickup as music21's own MIDI export gives it: the upbeat at tick 0, so the file's bar lines
fall one upbeat early) and read exactly as ``stripe harmonize`` reads it (``commands.read_input_song``
with ``--grid auto``, then ``pickup.apply_pickup``: detected, or ``--pickup notated`` passes the score's
upbeat as a user who knows it would). Both systems get that song: stripe = ``Harmonizer.load(--model)``
(default: the bundled model) with ``HarmonizeOptions(accompaniment=False)``; HMM =
``baseline.harmonize_baseline`` as ``end_to_end.evaluate_song`` calls it (key from
``structure.estimate_key``, the key stripe uses too; ``--key reference`` gives both the score's reference key
instead, an oracle figure that says how much a better key estimate could add). Each reference beat takes the predicted chord heard
over most of it (``end_to_end.chords_per_annotated_step``) and ``metrics.chord_accuracy`` compares root
and root + major/minor (N is a label of its own: stripe's N outside the melody counts as wrong).

Figures per group (a corpus, then per meter): accuracies weighted by beats, the stripe - HMM difference
with a 95% interval from resampling the pieces, how many pieces each system wins; chord changes per bar =
P(the root + maj/min label changes between adjacent beats) x the meter's beats per bar, over the same beat
pairs for the reference and both systems (pairs of known beats where there is a reference); melody fit
(CTnCTR, PCS of ``metrics``, on the file's grid); key accuracy; how many files stripe read on a grid
inferred from the notes, and how many notated pickups it found.

    python -m benchmarks.ood_chords                      # the held-out chorales (a third), 4 lead sheets, 200 folk tunes
    python -m benchmarks.ood_chords --chorales all       # all 368 chorales (only for a model not trained on any)
    python -m benchmarks.ood_chords --max-chorales 60 --max-tunes 60 --seed 1 --json-out ood.json --force
"""

from __future__ import annotations

import argparse
import math
import random
import re
import shlex
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harmonize.chords import Chord
from harmonize.song import STEPS_PER_QUARTER, ChordSpan, Grid, Key, Song

FOLK_DIRS = ("ryansMammoth", "nottingham-dataset", "oneills1850", "miscFolk")
METER_GROUPS = ("2/4", "3/4", "4/4", "6/8", "other")
SYSTEMS = ("stripe", "hmm")
MIN_BARS = 8
MIN_CHORD_BAR_SHARE = 0.5  # "chord symbols on most bars": a symbol starts in at least half of them
GRID_RESOLUTION = 480  # ticks per quarter of the written files
# a quoted ABC string that reads as a chord symbol ("G", "Am", "D7", "Am/c"); annotations ("^Segno",
# "Animated", fingerings) do not. Section letters ("A", "B") do: the chord-symbol share of bars drops them
_ABC_CHORD = re.compile(r'"[A-G][b#]?(?:m|min|maj|dim|aug|sus|M|\+|o)?\d*(?:/[A-Ga-g][b#,+]?)?"')
_ABC_METER = {"C": "4/4", "C|": "2/2"}

Label = Chord | None  # root + maj/min, None: unknown


# ------------------------------------------------------------------------------------------- pieces


@dataclass(frozen=True)
class Beat:
    start: float  # quarter lengths from the start of the written file
    end: float
    chord: Label  # the reference; None: unknown (or no reference at all)


@dataclass
class Piece:
    corpus: str  # "chorales" | "lead sheets" | "ABC lead sheets" | "folk"
    name: str
    meter: str  # first time signature, "6/8"
    beats_per_bar: int  # music21's beat count of that meter (6/8: 2)
    notes: list[tuple[float, float, int]]  # melody (start, end in quarter lengths, MIDI pitch)
    meters: list[tuple[float, int, int]]  # time signatures (offset, numerator, denominator)
    beats: list[Beat]
    bars: int
    pickup: float  # quarter lengths of upbeat before the first bar line, as notated
    key: Key | None = None  # reference key
    has_reference: bool = True


def _m21():
    import music21

    return music21


def parse(path: Path, number: int | None = None):
    """A corpus file as music21 reads it, never through music21's pickle cache (read or written)."""
    return _m21().converter.parseFile(path, number=number, forceSource=True, storePickle=False)


def triad_label(sonority) -> Label:
    """Root + major/minor of a chordified sonority (module docstring); None when it is no clear triad."""
    if len(set(sonority.pitchClasses)) < 3 or not (sonority.isTriad() or sonority.isSeventh()):
        return None
    family = {"major": "maj", "minor": "min", "diminished": "min"}.get(sonority.quality)
    return None if family is None else Chord(sonority.root().pitchClass, family)


def symbol_label(symbol) -> Label:
    """Root + major/minor of a chord symbol: the written root, the family from its thirds."""
    harmony = _m21().harmony
    if isinstance(symbol, harmony.NoChord) or symbol.root() is None:
        return None
    root = symbol.root().pitchClass
    above = {(pc - root) % 12 for pc in symbol.pitchClasses}
    if 4 in above:
        return Chord(root, "maj")
    if 3 in above:
        return Chord(root, "min")
    return None  # sus, power chord: no third


def meter_changes(part) -> list[tuple[float, int, int]]:
    m21 = _m21()
    out = [(float(ts.getOffsetInHierarchy(part)), int(ts.numerator), int(ts.denominator))
           for ts in part.recurse().getElementsByClass(m21.meter.TimeSignature)]
    return sorted(set(out)) or [(0.0, 4, 4)]


def melody_notes(part) -> list[tuple[float, float, int]]:
    """The part's notes with ties merged (a chord in the melody: its top note); chord symbols and grace
    notes left out."""
    m21 = _m21()
    out = []
    for n in part.stripTies(inPlace=False).flatten().notes:
        if isinstance(n, m21.harmony.Harmony) or n.duration.isGrace or n.quarterLength <= 0:
            continue
        start = float(n.offset)
        out.append((start, start + float(n.quarterLength), max(p.midi for p in n.pitches)))
    return sorted(out)


def beat_grid(part) -> tuple[list[tuple[float, float]], int, float]:
    """``(beats as (start, end) quarter lengths, bars, pickup)``: the meter's beats of every measure, counted
    from the measure's notated downbeat (a pickup measure's padding), so a 1-beat upbeat in 4/4 gets one
    beat; a beat ends where the next begins, the last at the end of the music."""
    m21 = _m21()
    measures = list(part.getElementsByClass(m21.stream.Measure))
    ts = part.recurse().getElementsByClass(m21.meter.TimeSignature).first() or m21.meter.TimeSignature("4/4")
    starts: list[float] = []
    pickup = 0.0
    for i, m in enumerate(measures):
        ts = m.timeSignature or ts
        start, length = float(m.offset), float(m.duration.quarterLength)
        bar, beat = float(ts.barDuration.quarterLength), float(ts.beatDuration.quarterLength)
        pad = float(m.paddingLeft or 0.0)
        if i == 0 and not pad and 0 < length < bar:  # a short first measure music21 left unpadded
            pad = bar - length
        if i == 0 and pad:
            pickup = length
        pos = start + math.ceil(pad / beat - 1e-9) * beat - pad
        while pos < start + length - 1e-9:
            starts.append(pos)
            pos += beat
    end = max((float(m.offset + m.duration.quarterLength) for m in measures), default=0.0)
    starts = sorted(set(starts))
    beats = list(zip(starts, starts[1:] + [end], strict=True))
    return [(a, b) for a, b in beats if b > a], len(measures) - (1 if pickup else 0), pickup


Segment = tuple[float, float, Label]


def beat_labels(segments: Sequence[Segment], beats: Sequence[tuple[float, float]]) -> list[Label]:
    """Each beat's label: the one sounding over most of it (summed over segments with the same label;
    ties to the earliest; time no segment covers counts as unknown)."""
    out = []
    for b0, b1 in beats:
        weight: dict[Label, float] = {None: 0.0}
        first: dict[Label, float] = {None: math.inf}
        covered = 0.0
        for s0, s1, label in segments:
            overlap = min(s1, b1) - max(s0, b0)
            if overlap > 1e-9:
                weight[label] = weight.get(label, 0.0) + overlap
                first[label] = min(first.get(label, math.inf), max(s0, b0))
                covered += overlap
        weight[None] += max(0.0, (b1 - b0) - covered)
        if weight[None] > 0 and first[None] == math.inf:
            first[None] = b0
        out.append(max(weight, key=lambda lab: (weight[lab], -first[lab])))
    return out


def chordified_segments(score) -> list[Segment]:
    m21 = _m21()
    flat = score.chordify().flatten()
    return [(float(c.offset), float(c.offset + c.quarterLength), triad_label(c))
            for c in flat.getElementsByClass(m21.chord.Chord) if c.quarterLength > 0]


def symbol_segments(part) -> list[Segment]:
    """Each chord symbol in force from its offset to the next one (the last to the end of the part)."""
    m21 = _m21()
    symbols = sorted(((float(cs.getOffsetInHierarchy(part)), symbol_label(cs))
                      for cs in part.recurse().getElementsByClass(m21.harmony.ChordSymbol)),
                     key=lambda x: x[0])
    end = float(part.highestTime)
    return [(t, symbols[i + 1][0] if i + 1 < len(symbols) else end, lab) for i, (t, lab) in enumerate(symbols)]


def _key_of(k) -> Key | None:
    if k is None or k.mode not in ("major", "minor"):
        return None
    return Key(k.tonic.pitchClass, k.mode)


def _written_key(part) -> Key | None:
    """The key the file states with its mode (an ABC ``K:``), None when it has none or a modal one."""
    m21 = _m21()
    return _key_of(part.recurse().getElementsByClass(m21.key.Key).first())


def _meter_name(num: int, den: int) -> str:
    return f"{num}/{den}"


def piece_from_part(part, corpus: str, name: str, segments: Sequence[Segment] | None, key: Key | None) -> Piece:
    m21 = _m21()
    beats, bars, pickup = beat_grid(part)
    labels = beat_labels(segments, beats) if segments is not None else [None] * len(beats)
    meters = meter_changes(part)
    first = m21.meter.TimeSignature(_meter_name(*meters[0][1:]))
    return Piece(corpus, name, _meter_name(*meters[0][1:]), int(first.beatCount), melody_notes(part), meters,
                 [Beat(a, b, lab) for (a, b), lab in zip(beats, labels, strict=True)], bars, pickup, key,
                 has_reference=segments is not None)


def chorale_piece(score, name: str) -> Piece | None:
    """A 4-part chorale (None for any other number of parts)."""
    if len(getattr(score, "parts", ())) != 4:
        return None
    return piece_from_part(score.parts[0], "chorales", name, chordified_segments(score),
                           _key_of(score.analyze("key")))


def leadsheet_piece(score, name: str) -> Piece | None:
    """A lead sheet whose chord symbols cover most bars and which lasts ``MIN_BARS`` (None otherwise)."""
    m21 = _m21()
    part = score.parts[0]
    measures = list(part.getElementsByClass(m21.stream.Measure))
    with_symbol = sum(1 for m in measures if m.recurse().getElementsByClass(m21.harmony.ChordSymbol).first())
    piece = piece_from_part(part, "lead sheets", name, symbol_segments(part), _written_key(part))
    if piece.bars < MIN_BARS or with_symbol < MIN_CHORD_BAR_SHARE * len(measures):
        return None
    return piece


def mxl_leadsheet(path: Path) -> Piece | None:
    """A MusicXML lead sheet of music21's corpus; no reference key (the two bundled ones declare C major
    over chords in F)."""
    piece = leadsheet_piece(parse(path), f"leadSheet/{path.name}")
    if piece is not None:
        piece.key = None
    return piece


def folk_piece(score, name: str) -> Piece | None:
    piece = piece_from_part(score.parts[0], "folk", name, None, _written_key(score.parts[0]))
    return piece if piece.bars >= MIN_BARS and piece.notes else None


# ------------------------------------------------------------------------------------------ corpus


def corpus_root() -> Path:
    return Path(_m21().corpus.__file__).parent


@dataclass(frozen=True)
class AbcTune:
    path: Path
    number: int
    meter: str
    chords: bool  # quoted strings that look like chord symbols (checked again once parsed)

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}#{self.number}"


def abc_tunes(path: Path) -> list[AbcTune]:
    """The tunes of an ABC file from its text alone (``X:`` starts one, the first ``M:`` is its meter):
    cheap, so the whole folder is listed before music21 parses only the sampled tunes."""
    tunes, number, meter, chords = [], None, "4/4", False
    for line in path.read_text(errors="replace").splitlines() + ["X:"]:
        if line.startswith("X:"):
            if number is not None:
                tunes.append(AbcTune(path, number, meter, chords))
            digits = re.match(r"\s*(\d+)", line[2:])
            number, meter, chords = (int(digits.group(1)) if digits else None), None, False
        elif number is not None:
            if line.startswith("M:") and meter is None:
                text = line[2:].strip().replace(" ", "")
                meter = _ABC_METER.get(text, text)
            elif not line.startswith("%") and _ABC_CHORD.search(line):
                chords = True
    return [t if t.meter else AbcTune(t.path, t.number, "4/4", t.chords) for t in tunes]


def meter_group(meter: str) -> str:
    return meter if meter in METER_GROUPS else "other"


def seeded_order(items: Sequence, seed: int) -> list:
    """A fixed shuffle: sorted first, so the order never depends on the file system."""
    out = sorted(items, key=str)
    random.Random(seed).shuffle(out)
    return out


def take(candidates: Sequence, n: int, make: Callable[[object], Piece | None], skipped: list) -> list[Piece]:
    """The first ``n`` candidates that make a usable piece (parse errors and rejects are noted, not fatal)."""
    out: list[Piece] = []
    for c in candidates:
        if len(out) >= n:
            break
        try:
            piece = make(c)
        except Exception as e:  # music21 raises many types on odd files
            skipped.append({"item": str(c), "why": f"{type(e).__name__}: {e}"[:200]})
            continue
        if piece is None:
            skipped.append({"item": str(c), "why": "rejected (parts, bars or chord symbols)"})
        else:
            out.append(piece)
    return out


CHORALE_SETS = ("held-out", "all", "train")


def held_out(name: str) -> bool:
    """The third of the chorales no model is trained on (``benchmarks/export_chorales.py`` leaves them out):
    a fixed rule on the file name, so the split never depends on the file system or a seed."""
    return zlib.crc32(name.encode()) % 3 == 0


def select_chorales(n: int, seed: int, skipped: list, which: str = "all") -> list[Piece]:
    """Up to ``n`` 4-part chorales: ``held-out`` (the test third), ``train`` (the rest) or ``all``."""
    paths = seeded_order(_m21().corpus.getComposer("bach"), seed)
    if which != "all":
        paths = [p for p in paths if held_out(Path(p).name) == (which == "held-out")]
    return take(paths, n, lambda p: chorale_piece(parse(p), Path(p).name), skipped)


def select_abc(paths: Sequence[Path], n: int, seed: int, skipped: list, which: str = "held-out") -> list[Piece]:
    """Up to ``n`` lead sheets from ABC files of your own (``--abc``, e.g. the Nottingham Music Database's
    tunes, ``ABC_cleaned/`` of github.com/jukedeck/nottingham-dataset): tunes with chord symbols, the
    ``held-out`` third by ``held_out`` on ``file#number`` (or the ``train`` rest, or ``all``)."""
    files = sorted({f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*.abc")))})
    tunes = [t for f in files for t in abc_tunes(f) if t.chords]
    if which != "all":
        tunes = [t for t in tunes if held_out(t.name) == (which == "held-out")]

    def make(t):
        piece = leadsheet_piece(parse(t.path, t.number), t.name)
        if piece is not None:
            piece.corpus = "ABC lead sheets"
        return piece

    return take(seeded_order(tunes, seed), n, make, skipped)


def select_tunes(n: int, seed: int, skipped: list) -> tuple[list[Piece], list[Piece]]:
    """``(lead sheets, folk)``: up to ``n`` tunes with chord symbols, and ``n`` without, evenly over the
    meter groups (a group short of tunes leaves its share unused)."""
    root = corpus_root()
    tunes = [t for d in FOLK_DIRS for p in sorted((root / d).glob("*.abc")) for t in abc_tunes(p)]

    def abc_piece(make):
        return lambda t: make(parse(t.path, t.number), t.name)

    sheets = [t for t in tunes if t.chords]
    mxl = [p for p in sorted((root / "leadSheet").glob("*.mxl"))]
    leads = take(seeded_order(sheets, seed), n, abc_piece(leadsheet_piece), skipped)
    leads += take(mxl, max(0, n - len(leads)), lambda p: mxl_leadsheet(p), skipped)
    folk: list[Piece] = []
    share = n // len(METER_GROUPS)
    for group in METER_GROUPS:
        pool = [t for t in tunes if not t.chords and meter_group(t.meter) == group]
        folk += take(seeded_order(pool, seed), share, abc_piece(folk_piece), skipped)
    return leads, folk


# ------------------------------------------------------------------------------------ the user path


def write_melody_midi(piece: Piece, path: Path, bpm: float) -> None:
    """The melody alone as a type-1 MIDI file: one MIDI beat per quarter, one tempo, the time signatures at
    their offsets; what a notation program exports (a pickup's upbeat at tick 0)."""
    import mido

    def tick(ql: float) -> int:
        return round(ql * GRID_RESOLUTION)

    # music21 gives an irregular tuplet bar a meter like 1/3, which MIDI cannot write: that bar is left
    # in the meter before it
    meta = [(tick(off), mido.MetaMessage("time_signature", numerator=num, denominator=den))
            for off, num, den in piece.meters if den & (den - 1) == 0]
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=round(60e6 / bpm))])
    now = 0
    for t, msg in sorted(meta, key=lambda e: e[0]):
        conductor.append(msg.copy(time=t - now))
        now = t
    events = [(tick(s), 1, mido.Message("note_on", note=p, velocity=80)) for s, _, p in piece.notes]
    events += [(max(tick(e), tick(s) + 1), 0, mido.Message("note_off", note=p, velocity=0)) for s, e, p in piece.notes]
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="Melody")])
    now = 0
    for t, _order, msg in sorted(events, key=lambda e: (e[0], e[1])):  # note-offs before note-ons
        track.append(msg.copy(time=t - now))
        now = t
    mid = mido.MidiFile(type=1, ticks_per_beat=GRID_RESOLUTION)
    mid.tracks.extend([conductor, track])
    mid.save(str(path))


def read_like_harmonize(path: Path, pickup_steps: int | None = None) -> tuple[Song, int]:
    """The song ``stripe harmonize FILE`` harmonizes, and the pickup steps it used: detected (``None``, the
    default flags) or given as ``--pickup`` (``pickup_steps`` sixteenths, in beats of the file's grid)."""
    from harmonize.commands import read_input_song
    from harmonize.pickup import apply_pickup, beat_steps

    song = read_input_song(path, grid="auto")
    beats = None if pickup_steps is None else pickup_steps / beat_steps(song.grid)
    song, steps, _how = apply_pickup(song, beats)
    return song, steps


System = Callable[[Song, Key], list[ChordSpan]]  # (song, its key) -> chords


def stripe_system(harmonizer, harmonic_rhythm: str = "auto") -> System:
    """``stripe harmonize``'s chords; the key is the one ``estimate_key`` gives (what the harmonizer finds by
    itself) unless ``--key reference`` passes the score's, as ``--key`` would."""
    from dataclasses import replace

    from harmonize.pipeline import HarmonizeOptions

    options = HarmonizeOptions(accompaniment=False, harmonic_rhythm=harmonic_rhythm)
    return lambda song, key: harmonizer(song, replace(options, key=key)).chords


def hmm_system(song: Song, key: Key) -> list[ChordSpan]:
    """The baseline as ``end_to_end.evaluate_song`` calls it (there: the key from ``estimate_key``)."""
    from harmonize.baseline import harmonize_song

    return harmonize_song(song, key)


# ------------------------------------------------------------------------------------------ scoring


def beat_grid_seconds(piece: Piece, bpm: float) -> Grid:
    """The reference beats as a ``Grid`` in the written file's seconds, ``STEPS_PER_QUARTER`` steps a beat."""
    ql = [b.start for b in piece.beats] + [piece.beats[-1].end]
    return Grid.from_beats(np.asarray(ql) * 60.0 / bpm)


def per_beat(spans: Sequence[ChordSpan], song: Song, beats: Grid) -> list[Chord]:
    """One predicted chord per reference beat: the one heard over most of it."""
    from harmonize.end_to_end import chords_per_annotated_step

    return chords_per_annotated_step(spans, song.grid, beats)[::STEPS_PER_QUARTER]


def _majmin(c: Chord):
    from harmonize.metrics import _label

    return _label(c, "majmin")


def score_beats(ref: Sequence[Label], preds: dict[str, Sequence[Chord]], beats_per_bar: int,
                has_reference: bool = True) -> dict:
    """Counts of one piece: scored and unknown beats, correct roots and root + maj/min per system, and chord
    changes (root + maj/min, N a label of its own) over adjacent beat pairs, the same pairs for all: both
    beats known when there is a reference, every pair otherwise."""
    from harmonize.metrics import chord_accuracy

    known = [i for i, r in enumerate(ref) if r is not None]
    pairs = [i for i in range(len(ref) - 1) if not has_reference or (ref[i] is not None and ref[i + 1] is not None)]
    out: dict = {"beats": len(known), "unknown": len(ref) - len(known), "pairs": len(pairs),
                 "beats_per_bar": beats_per_bar, "changes": {}}
    if has_reference:
        r = [ref[i] for i in known]
        out["changes"]["reference"] = sum(_majmin(ref[i]) != _majmin(ref[i + 1]) for i in pairs)
    for name, pred in preds.items():
        out["changes"][name] = sum(_majmin(pred[i]) != _majmin(pred[i + 1]) for i in pairs)
        if has_reference and known:
            p = [pred[i] for i in known]
            out[name] = {level: round(chord_accuracy(p, r, steps_per_frame=1, level=level) * len(known))
                         for level in ("root", "majmin")}
    return out


def melody_fit(song: Song, spans: Sequence[ChordSpan]) -> dict:
    """CTnCTR and PCS of the chords against the melody they harmonize (no reference needed)."""
    from harmonize.metrics import chord_tone_ratio, melody_per_step, pitch_consonance_score
    from harmonize.structure import chords_per_step

    melody = melody_per_step(song.melody, song.n_steps)
    steps = chords_per_step(list(spans), song.n_steps)
    return {"CTnCTR": chord_tone_ratio(melody, steps), "PCS": pitch_consonance_score(melody, steps)}


def evaluate_piece(piece: Piece, systems: dict[str, System], bpm: float = 100.0, pickup: str = "detect",
                   workdir: Path | None = None, key: str = "estimated") -> dict:
    """Write the melody, read it as ``stripe harmonize`` does, run every system, score per reference beat.
    ``pickup``: ``detect`` (stripe's default) or ``notated`` (``--pickup`` with the score's upbeat, as a
    user who knows it would type). ``key``: every system gets ``estimate_key``'s key (``estimated``, what
    users get) or the score's reference key where it has one (``reference``: an oracle figure)."""
    from harmonize.structure import estimate_key

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "melody.mid"
        write_melody_midi(piece, path, bpm)
        notated = round(piece.pickup * STEPS_PER_QUARTER) if pickup == "notated" else None
        song, pickup_steps = read_like_harmonize(path, notated)
    beats = beat_grid_seconds(piece, bpm)
    est = estimate_key(song)
    given = piece.key if key == "reference" and piece.key is not None else est
    preds, fit = {}, {}
    for name, system in systems.items():
        spans = system(song, given)
        preds[name] = per_beat(spans, song, beats)
        fit[name] = melody_fit(song, spans)
    row = score_beats([b.chord for b in piece.beats], preds, piece.beats_per_bar, piece.has_reference)
    row.update({
        "corpus": piece.corpus, "name": piece.name, "meter": piece.meter, "bars": piece.bars, "fit": fit,
        "grid": song.grid_source, "stripe_beats_per_bar": _beats_per_bar(song.grid),
        "pickup_notated": round(piece.pickup * STEPS_PER_QUARTER), "pickup_read": pickup_steps,
        "key_ref": piece.key.name if piece.key else None, "key_est": est.name,
        "key_ok": None if piece.key is None else est == piece.key, "key_given": given.name,
    })
    return row


def _beats_per_bar(grid: Grid) -> float:
    """Median beats per bar of the grid stripe used (6/8 read from the file: 2)."""
    bars = list(grid.bar_starts) + [grid.n_steps]
    counts = [sum(1 for b in grid.beat_starts if lo <= b < hi) for lo, hi in zip(bars[:-1], bars[1:], strict=True)]
    return float(np.median(counts)) if counts else 0.0


# ------------------------------------------------------------------------------------------ figures


def _acc(rows: list[dict], system: str, level: str) -> float:
    n = sum(r["beats"] for r in rows if system in r)
    return sum(r[system][level] for r in rows if system in r) / n if n else float("nan")


def bootstrap_diff(rows: list[dict], level: str = "majmin", n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% interval of stripe − HMM accuracy (beat-weighted) with the pieces resampled: how sure the sign is."""
    rows = [r for r in rows if "stripe" in r and r["beats"]]
    if not rows:
        return float("nan"), float("nan")
    beats = np.array([r["beats"] for r in rows], dtype=float)
    diff = np.array([r["stripe"][level] - r["hmm"][level] for r in rows], dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(rows), size=(n, len(rows)))
    stats = diff[idx].sum(axis=1) / beats[idx].sum(axis=1)
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def summarize(rows: list[dict]) -> dict:
    """Figures of a group of pieces: accuracies beat-weighted over the group, change rates over its beat
    pairs (P(change between adjacent beats) x beats per bar), means of the melody fit."""
    pairs = sum(r["pairs"] for r in rows)
    out: dict = {"tunes": len(rows), "beats": sum(r["beats"] for r in rows),
                 "unknown": sum(r["unknown"] for r in rows)}
    if out["beats"]:
        for s in SYSTEMS:
            out[s] = {level: _acc(rows, s, level) for level in ("root", "majmin")}
        out["diff_majmin"] = out["stripe"]["majmin"] - out["hmm"]["majmin"]
        out["diff_majmin_ci95"] = bootstrap_diff(rows)
        out["stripe_better_tunes"] = sum(r["stripe"]["majmin"] > r["hmm"]["majmin"] for r in rows if "stripe" in r)
        out["hmm_better_tunes"] = sum(r["stripe"]["majmin"] < r["hmm"]["majmin"] for r in rows if "stripe" in r)
    names = sorted({k for r in rows for k in r["changes"]})
    out["changes_per_bar"] = {k: sum(r["changes"].get(k, 0) * r["beats_per_bar"] for r in rows) / pairs
                              if pairs else float("nan") for k in names}
    out["fit"] = {s: {m: float(np.nanmean([r["fit"][s][m] for r in rows])) for m in ("CTnCTR", "PCS")}
                  for s in SYSTEMS if rows and s in rows[0]["fit"]}
    keyed = [r for r in rows if r["key_ok"] is not None]
    out["key"] = {"n": len(keyed), "acc": sum(r["key_ok"] for r in keyed) / len(keyed) if keyed else float("nan")}
    out["grid_from_notes"] = sum(r["grid"] == "notes" for r in rows)
    with_pickup = [r for r in rows if r["pickup_notated"]]
    out["pickup"] = {"notated": len(with_pickup),
                     "read_right": sum(r["pickup_read"] == r["pickup_notated"] for r in with_pickup),
                     "found_without": sum(1 for r in rows if r["pickup_read"] and not r["pickup_notated"])}
    return out


def group_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """Group name -> its pieces: each corpus whole, then per meter group (in ``METER_GROUPS`` order)."""
    out: dict[str, list[dict]] = {}
    for corpus in ("chorales", "lead sheets", "ABC lead sheets", "folk"):
        mine = [r for r in rows if r["corpus"] == corpus]
        if not mine:
            continue
        out[f"{corpus}: all"] = mine
        for g in METER_GROUPS:
            sub = [r for r in mine if meter_group(r["meter"]) == g]
            if sub and len(sub) < len(mine):
                out[f"{corpus}: {g}"] = sub
    return out


def _f(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=170)  # a log file: no 80-column truncation
    acc = Table(title="chord accuracy per reference beat (stripe vs the HMM baseline, the same song and key)")
    for c in ("group", "tunes", "beats", "unknown", "stripe root", "HMM root", "stripe maj/min", "HMM maj/min",
              "diff maj/min", "95% CI", "tunes S>H / H>S"):
        acc.add_column(c, justify="left" if c == "group" else "right")
    beh = Table(title="behaviour: chord changes per bar (root + maj/min), melody fit, key, grid, pickup")
    for c in ("group", "changes/bar ref", "stripe", "HMM", "CTnCTR stripe", "HMM", "PCS stripe", "HMM",
              "key acc (n)", "grid from notes", "pickups read right"):
        beh.add_column(c, justify="left" if c == "group" else "right")
    for name, g in report["groups"].items():
        if g["beats"]:
            lo, hi = g["diff_majmin_ci95"]
            acc.add_row(name, str(g["tunes"]), str(g["beats"]), str(g["unknown"]), _f(g["stripe"]["root"]),
                        _f(g["hmm"]["root"]), _f(g["stripe"]["majmin"]), _f(g["hmm"]["majmin"]),
                        f"{g['diff_majmin']:+.3f}", f"[{lo:+.3f}, {hi:+.3f}]",
                        f"{g['stripe_better_tunes']} / {g['hmm_better_tunes']}")
        ch, fit, p = g["changes_per_bar"], g["fit"], g["pickup"]
        beh.add_row(name, _f(ch.get("reference"), 2), _f(ch.get("stripe"), 2), _f(ch.get("hmm"), 2),
                    _f(fit["stripe"]["CTnCTR"]), _f(fit["hmm"]["CTnCTR"]), _f(fit["stripe"]["PCS"]),
                    _f(fit["hmm"]["PCS"]), f"{_f(g['key']['acc'])} ({g['key']['n']})",
                    f"{g['grid_from_notes']}/{g['tunes']}",
                    f"{p['read_right']}/{p['notated']}" + (f" (+{p['found_without']} false)" if p["found_without"] else ""))
    console.print(acc)
    console.print(beh)
    console.print(f"{report['counts']['pieces']} pieces in {report['seconds']:.0f} s; {report['counts']['skipped']} "
                  "corpus items skipped (not 4 parts, under 8 bars, too few chord symbols, unreadable); "
                  f"model {report['model']}", markup=False)


# ------------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ood_chords", description=__doc__.splitlines()[0])
    ap.add_argument("--max-chorales", type=int, default=400, help="at most this many 4-part chorales of --chorales")
    ap.add_argument("--chorales", choices=CHORALE_SETS, default="held-out",
                    help="held-out: the third no model is trained on (default); train: the others; all")
    ap.add_argument("--abc", type=Path, nargs="*", default=[],
                    help="ABC files or folders of lead sheets with chord symbols (e.g. the Nottingham dataset)")
    ap.add_argument("--abc-tunes", choices=CHORALE_SETS, default="held-out", help="which of --abc's tunes")
    ap.add_argument("--max-abc", type=int, default=300, help="at most this many --abc tunes")
    ap.add_argument("--harmonic-rhythm", choices=("auto", "bar", "half", "beat"), default="auto",
                    help="stripe harmonize --harmonic-rhythm for stripe's chords")
    ap.add_argument("--max-tunes", type=int, default=200,
                    help="at most this many lead sheets, and this many melody-only folk tunes (split over meters)")
    ap.add_argument("--seed", type=int, default=0, help="which fixed sample of the sorted corpus files")
    ap.add_argument("--model", default=None, help="harmonizer folder or Hub id (default: the bundled model)")
    ap.add_argument("--bpm", type=float, default=100.0, help="tempo of the written melody files (quarters/min)")
    ap.add_argument("--pickup", choices=("detect", "notated"), default="detect",
                    help="detect the upbeat as stripe harmonize does, or pass the notated one as --pickup")
    ap.add_argument("--key", choices=("estimated", "reference"), default="estimated",
                    help="the key both systems get: estimated from the melody (default), or the score's "
                         "(an oracle figure; pieces without one keep the estimate)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--force", action="store_true", help="overwrite an existing --json-out")
    args = ap.parse_args(argv)
    print("$ " + shlex.join(["python", "-m", "benchmarks.ood_chords", *argv]), flush=True)

    from harmonize.commands import save_json
    from harmonize.io.outputs import Outputs

    guard = Outputs([args.json_out], force=args.force)  # checked before the long work
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    from harmonize.pipeline import Harmonizer

    harmonizer = Harmonizer.load(args.model, device="cpu")  # the loader of stripe eval --end-to-end
    systems = {"stripe": stripe_system(harmonizer, args.harmonic_rhythm), "hmm": hmm_system}
    skipped: list[dict] = []
    pieces = select_chorales(args.max_chorales, args.seed, skipped, args.chorales)
    leads, folk = select_tunes(args.max_tunes, args.seed, skipped)
    pieces += leads + folk
    if args.abc:
        pieces += select_abc(args.abc, args.max_abc, args.seed, skipped, args.abc_tunes)
    print(f"  {len(pieces)} pieces read from music21's corpus in {time.perf_counter() - t0:.0f} s "
          f"({len(skipped)} items skipped)", file=sys.stderr, flush=True)
    rows = []
    for i, piece in enumerate(pieces):
        try:
            rows.append(evaluate_piece(piece, systems, bpm=args.bpm, pickup=args.pickup, key=args.key))
        except Exception as e:  # a piece stripe refuses is reported, not fatal
            skipped.append({"item": piece.name, "why": f"{type(e).__name__}: {e}"[:200]})
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(pieces)} pieces", file=sys.stderr, flush=True)
    report = {
        "command": shlex.join(["python", "-m", "benchmarks.ood_chords", *argv]),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "model": harmonizer.source,
        "seconds": time.perf_counter() - t0,
        "counts": {"pieces": len(rows), "skipped": len(skipped)},
        "groups": {name: summarize(g) for name, g in group_rows(rows).items()},
        "per_piece": rows,
        "skipped": skipped,
    }
    with guard:
        save_json(report, args.json_out, guard)
    print_report(report)
    return report


if __name__ == "__main__":
    from harmonize.errors import run_script

    run_script(main)
