"""Key-aware note names for chord symbols: ``Db``, not ``C#``, in F minor or Ab major.

A chord root is named as a degree of the key: the diatonic degrees by the key's own letters, the
common chromatic ones as bII, bIII, #IV, bVI, bVII (so ``Bb`` in C major, ``A#`` nowhere near it).
Without a key, the neutral names of ``chords.PITCH_NAMES`` are used.
"""

from __future__ import annotations

from .chords import PITCH_NAMES, Chord
from .song import Key

_LETTERS = "CDEFGAB"
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# semitones above the tonic -> letter steps above the tonic's letter
_DEGREE_STEPS = {0: 0, 1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 4, 8: 5, 9: 5, 10: 6, 11: 6}
# the tonic as key signatures spell it (fewest accidentals; G# minor, not Ab minor)
_MAJOR_TONIC = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_TONIC = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def tonic_name(key: Key) -> str:
    return (_MAJOR_TONIC if key.mode == "major" else _MINOR_TONIC)[key.tonic % 12]


def key_name(key: Key) -> str:
    """``"Db major"``, ``"G# minor"``."""
    return f"{tonic_name(key)} {key.mode}"


def pitch_name(pc: int, key: Key | None) -> str:
    """Name of pitch class ``pc`` in ``key`` (``C#`` in A major, ``Db`` in F minor)."""
    pc %= 12
    if key is None:
        return PITCH_NAMES[pc]
    tonic = tonic_name(key)
    degree = (pc - key.tonic) % 12
    letter = _LETTERS[(_LETTERS.index(tonic[0]) + _DEGREE_STEPS[degree]) % 7]
    shift = (pc - _LETTER_PC[letter] + 6) % 12 - 6  # -6..5
    name = letter + ("#" if shift == 1 else "b" if shift == -1 else "")
    rare = name in ("Cb", "Fb", "B#", "E#") and pc not in key.scale  # chromatic: write it plainly
    if abs(shift) > 1 or rare:
        sharps = tonic in (("G", "D", "A", "E", "B", "F#") if key.mode == "major" else ("E", "B", "F#", "C#", "G#"))
        return (_SHARP_NAMES if sharps else _FLAT_NAMES)[pc]
    return name


def harte_symbol(chord: Chord, key: Key | None) -> str:
    """``Chord.symbol`` with the key's spelling: ``Db:maj`` in F minor, ``C#:min7`` in A major."""
    return chord.harte(lambda pc: pitch_name(pc, key))
