"""Chord symbols: parsing, pitch-class content, and the chord stage's class vocabulary.

Symbols follow Harte et al. as POP909 writes them: ``ROOT:QUALITY[/BASS]`` (``B:maj``, ``C#:min7``,
``E:maj/3``) and ``N`` for no chord. Plain lead-sheet spellings (``Am``, ``G7``, ``Cmaj7``,
``F#dim``) are accepted too, for ``--chords`` files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_NOTE_BASE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# intervals above the root, in semitones
QUALITY_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "maj6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9),
    "hdim7": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    "minmaj7": (0, 3, 7, 11),
    "sus4(b7)": (0, 5, 7, 10),
    "9": (0, 4, 7, 10, 2),
    "maj9": (0, 4, 7, 11, 2),
    "min9": (0, 3, 7, 10, 2),
}

# the chord stage predicts one of these qualities (or N); rarer qualities fold into the nearest
CLASS_QUALITIES = ("maj", "min", "7", "maj7", "min7", "dim", "aug", "sus2", "sus4")
_FOLD = {
    "maj6": "maj", "9": "7", "maj9": "maj7", "min6": "min", "min9": "min7",
    "hdim7": "dim", "dim7": "dim", "minmaj7": "min", "sus4(b7)": "sus4",
}
N_CLASSES = 1 + 12 * len(CLASS_QUALITIES)  # class 0 is N (no chord)

_INTERVAL_DEGREES = {
    "1": 0, "b2": 1, "2": 2, "b3": 3, "3": 4, "4": 5, "#4": 6, "b5": 6, "5": 7,
    "#5": 8, "b6": 8, "6": 9, "bb7": 9, "b7": 10, "7": 11, "9": 2, "b9": 1, "#9": 3, "11": 5,
    "#11": 6, "b13": 8, "13": 9,
}
_ROOT_RE = re.compile(r"^([A-Ga-g])([#b]*)")


def parse_pitch_class(name: str) -> int:
    """``"Eb"`` -> 3, ``"C#"`` -> 1. Raises ValueError on anything else."""
    m = _ROOT_RE.match(name.strip())
    if not m or m.end() != len(name.strip()):
        raise ValueError(f"not a pitch name: {name!r}")
    pc = _NOTE_BASE[m.group(1).upper()]
    pc += m.group(2).count("#") - m.group(2).count("b")
    return pc % 12


@dataclass(frozen=True)
class Chord:
    """A chord as pitch content: root pitch class (None for N), quality, and bass pitch class."""

    root: int | None
    quality: str = "maj"
    bass: int | None = None

    @property
    def is_none(self) -> bool:
        return self.root is None

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        if self.root is None:
            return ()
        return tuple(sorted({(self.root + i) % 12 for i in QUALITY_INTERVALS[self.quality]}))

    @property
    def chroma(self) -> tuple[int, ...]:
        """12-d binary chroma, index 0 = C."""
        pcs = set(self.pitch_classes)
        return tuple(1 if pc in pcs else 0 for pc in range(12))

    @property
    def symbol(self) -> str:
        return self.harte(PITCH_NAMES.__getitem__)

    def harte(self, name_of) -> str:
        """The Harte symbol with pitch classes named by ``name_of`` (``Db:maj`` where a key spells it so)."""
        if self.root is None:
            return "N"
        text = f"{name_of(self.root)}:{self.quality}"
        if self.bass is not None and self.bass != self.root:
            text += f"/{name_of(self.bass)}"
        return text

    @property
    def class_quality(self) -> str:
        return _FOLD.get(self.quality, self.quality)

    @property
    def class_index(self) -> int:
        """Index in the chord stage's vocabulary (0 = N)."""
        if self.root is None:
            return 0
        return 1 + self.root * len(CLASS_QUALITIES) + CLASS_QUALITIES.index(self.class_quality)

    def transposed(self, semitones: int) -> Chord:
        if self.root is None:
            return self
        bass = None if self.bass is None else (self.bass + semitones) % 12
        return Chord((self.root + semitones) % 12, self.quality, bass)


NO_CHORD = Chord(None)


def chord_from_class(index: int) -> Chord:
    """Inverse of ``Chord.class_index``."""
    if not 0 <= index < N_CLASSES:
        raise ValueError(f"chord class {index} out of range 0..{N_CLASSES - 1}")
    if index == 0:
        return NO_CHORD
    root, q = divmod(index - 1, len(CLASS_QUALITIES))
    return Chord(root, CLASS_QUALITIES[q])


def parse_chord(symbol: str) -> Chord:
    """Parse a Harte (``A:min7/b7``) or lead-sheet (``Am7/G``) chord symbol. ValueError if unreadable.

    Qualities outside the vocabulary that musicians write (``7sus4``, ``add9``, ``m(add9)``, ``7b9``,
    ``13``, ``C:maj(9)``, ``C:7(#9)``) are read as their tones and mapped to the nearest quality
    (see ``harmonize.qualities``); only symbols that cannot be read at all raise.
    """
    from .qualities import harte_intervals, leadsheet_intervals, nearest_quality

    text = symbol.strip().replace("\u266f", "#").replace("\u266d", "b")
    if text in ("N", "X", "N.C.", "NC", ""):
        return NO_CHORD
    m = _ROOT_RE.match(text)
    if not m:
        raise ValueError(f"not a chord symbol: {symbol!r}")
    root = parse_pitch_class(m.group(0))
    rest = text[m.end():]
    bass_text = None
    if "/" in rest:
        rest, bass_text = rest.rsplit("/", 1)
        if bass_text == "9" and rest.endswith("6") and not rest.startswith(":"):  # C6/9 is a 6/9 chord
            rest, bass_text = rest + "9", None
    if rest.startswith(":"):
        quality = rest[1:] or "maj"
        if quality not in QUALITY_INTERVALS:
            intervals = harte_intervals(quality)
            if intervals is None:
                raise ValueError(f"unknown chord quality {quality!r} in {symbol!r}")
            quality = nearest_quality(intervals)
    else:
        intervals = leadsheet_intervals(rest)
        if intervals is None:
            raise ValueError(f"unknown chord quality {rest!r} in {symbol!r}")
        quality = nearest_quality(intervals)
    bass = None
    if bass_text:
        if bass_text in _INTERVAL_DEGREES:  # Harte bass as a degree above the root
            bass = (root + _INTERVAL_DEGREES[bass_text]) % 12
        else:
            bass = parse_pitch_class(bass_text)
    return Chord(root, quality, bass)


def chord_from_pitch_classes(pcs: set[int] | frozenset[int]) -> Chord:
    """Best-matching vocabulary chord for a set of sounding pitch classes (template matching).

    Used to read a chord track already in a file. Score: chord tones covered minus tones the
    chord lacks, preferring triads on ties.
    """
    pcs = set(pcs)
    if not pcs:
        return NO_CHORD
    best, best_score = NO_CHORD, -99.0
    for root in range(12):
        for quality in CLASS_QUALITIES:
            chord_pcs = {(root + i) % 12 for i in QUALITY_INTERVALS[quality]}
            score = len(pcs & chord_pcs) - 0.75 * len(pcs - chord_pcs) - 0.5 * len(chord_pcs - pcs)
            score -= 0.01 * len(chord_pcs) + 0.001 * CLASS_QUALITIES.index(quality)
            if score > best_score:
                best, best_score = Chord(root, quality), score
    return best


def sounding_chord_on(root: int, pcs: set[int]) -> Chord | None:
    """The largest vocabulary chord on ``root`` whose tones all sound in the pitch classes ``pcs`` (Dai et
    al.'s ``maj(9)`` -> maj, not the dominant 9th; POP909-CL's block C E G B D -> Cmaj7, not Em7), ties to
    the commoner (earlier) quality; None when no vocabulary chord on ``root`` sounds."""
    rel = {(p - root) % 12 for p in pcs}
    inside = [q for q, iv in QUALITY_INTERVALS.items() if set(iv) <= rel]
    return Chord(root, max(inside, key=lambda q: len(QUALITY_INTERVALS[q]))) if inside else None


def chord_on_root(root: int, pcs: set[int]) -> Chord:
    """The chord on ``root`` that the pitch classes ``pcs`` spell: ``sounding_chord_on``, else the vocabulary
    quality on that root closest to them."""
    sounding = sounding_chord_on(root, pcs)
    if sounding is not None:
        return sounding
    rel = {(p - root) % 12 for p in pcs}
    best, best_score = "maj", -99.0
    for quality, intervals in QUALITY_INTERVALS.items():
        q = set(intervals)
        score = len(rel & q) - 0.75 * len(rel - q) - 0.5 * len(q - rel) - 0.01 * len(q)
        if score > best_score:
            best, best_score = quality, score
    return Chord(root, best)
