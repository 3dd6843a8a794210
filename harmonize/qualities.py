"""Chord qualities as musicians write them, read as tones and mapped to the nearest known quality.

``leadsheet_intervals("7sus4")`` and ``harte_intervals("sus4(b7)")`` give the chord's intervals above
the root (semitones); ``nearest_quality`` names the ``chords.QUALITY_INTERVALS`` quality closest to
them, by the chord's third, fifth and seventh (tensions such as 9, 11, 13, b9, #11 colour a chord but do
not change its class: ``C7b9`` is a ``C:7``, ``Cm(add9)`` a ``C:min``, ``C13`` a ``C:7``).
"""

from __future__ import annotations

import re

# Harte shorthands (Harte et al. 2005) beyond the vocabulary, as intervals above the root
_HARTE_SHORTHAND = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8), "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10), "7": (0, 4, 7, 10), "dim7": (0, 3, 6, 9), "hdim7": (0, 3, 6, 10),
    "minmaj7": (0, 3, 7, 11), "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9), "9": (0, 4, 7, 10, 2),
    "maj9": (0, 4, 7, 11, 2), "min9": (0, 3, 7, 10, 2), "sus2": (0, 2, 7), "sus4": (0, 5, 7),
    "11": (0, 4, 7, 10, 2, 5), "min11": (0, 3, 7, 10, 2, 5), "maj11": (0, 4, 7, 11, 2, 5),
    "13": (0, 4, 7, 10, 2, 9), "min13": (0, 3, 7, 10, 2, 9), "maj13": (0, 4, 7, 11, 2, 9),
    "5": (0, 7), "1": (0,),
}
# scale degrees (as written in Harte parentheses and lead-sheet alterations) -> semitones
_DEGREE = {"1": 0, "2": 2, "3": 4, "4": 5, "5": 7, "6": 9, "7": 11, "9": 2, "11": 5, "13": 9}
_DEGREE_RE = re.compile(r"^(\*?)([b#]*)(\d+)$")


def _degree(text: str) -> tuple[bool, int] | None:
    """``"b9"`` -> (False, 1); ``"*3"`` (omit the third) -> (True, 4); None if unreadable."""
    m = _DEGREE_RE.match(text)
    if not m or m.group(3) not in _DEGREE:
        return None
    semis = _DEGREE[m.group(3)] + m.group(2).count("#") - m.group(2).count("b")
    return bool(m.group(1)), semis % 12


def harte_intervals(quality: str) -> frozenset[int] | None:
    """``"maj(9)"``, ``"sus4(b7,9)"``, ``"(1,5)"``, ``"min11"`` -> intervals; None if unreadable."""
    m = re.match(r"^([a-z0-9]*)(?:\(([^()]*)\))?$", quality)
    if not m:
        return None
    base = m.group(1) or ("" if m.group(2) is not None else "maj")
    if base and base not in _HARTE_SHORTHAND:
        return None
    tones = set(_HARTE_SHORTHAND.get(base, (0,)))
    for item in filter(None, (m.group(2) or "").split(",")):
        parsed = _degree(item.strip())
        if parsed is None:
            return None
        omit, semis = parsed
        (tones.discard if omit else tones.add)(semis)
    return frozenset(tones)


# lead-sheet grammar: [family][extension][alterations and additions ...], parentheses ignored
_FAMILY = (  # longest first
    ("minmaj", "minmaj"), ("mmaj", "minmaj"), ("mMaj", "minmaj"), ("mM", "minmaj"), ("-maj", "minmaj"),
    ("-M", "minmaj"), ("maj", "maj"), ("Maj", "maj"), ("M", "maj"),
    ("\u0394", "maj"), ("^", "maj"), ("min", "min"), ("mi", "min"), ("m", "min"), ("-", "min"),
    ("dim", "dim"), ("o", "dim"), ("\u00b0", "dim"), ("aug", "aug"), ("+", "aug"),
    ("\u00f8", "hdim"), ("h", "hdim"),
)
_EXTENSION_RE = re.compile(r"^(69|13|11|9|7|6|5)")
_MODIFIER_RE = re.compile(r"^(add[b#]?\d+|sus[24]?|omit\d|no\d|alt|[b#]\d+)")


def leadsheet_intervals(suffix: str) -> frozenset[int] | None:
    """``"7sus4"``, ``"m(add9)"``, ``"7b9"``, ``"maj7#11"``, ``"6"``, ``"13"`` -> intervals; None if unreadable."""
    text = suffix.replace("(", "").replace(")", "").replace(",", "").replace(" ", "")
    family = ""
    for spelled, fam in _FAMILY:
        if text.startswith(spelled):
            family, text = fam, text[len(spelled):]
            break
    ext = ""
    m = _EXTENSION_RE.match(text)
    if m:
        ext, text = m.group(1), text[m.end():]
    if family in ("maj", "minmaj") and not ext:  # "Cmaj" is a triad, "CM" too; "CmM" means CmM7
        ext = "7" if family == "minmaj" or suffix in ("\u0394", "^") else ""
    third = {"min": 3, "minmaj": 3, "dim": 3, "hdim": 3}.get(family, 4)
    fifth = {"dim": 6, "hdim": 6, "aug": 8}.get(family, 7)
    tones = {0, third, fifth}
    if family == "maj" and ext in ("7", "9", "11", "13"):
        seventh = 11
    elif family == "minmaj":
        seventh = 11
    elif family == "dim" and ext == "7":
        seventh = 9
    elif family == "hdim" or ext in ("7", "9", "11", "13"):
        seventh = 10
    else:
        seventh = None
    if seventh is not None:
        tones.add(seventh)
    if ext == "5":
        tones.discard(third)
    if ext in ("6", "69"):
        tones.add(9)
    if ext in ("69", "9", "11", "13"):
        tones.add(2)
    if ext in ("11", "13"):
        tones.add(5 if ext == "11" else 9)
    while text:
        m = _MODIFIER_RE.match(text)
        if not m:
            return None
        mod, text = m.group(1), text[m.end():]
        if mod.startswith("sus"):
            tones.discard(third)
            tones.discard(3 if third == 4 else 4)
            tones.add(2 if mod == "sus2" else 5)
        elif mod.startswith(("omit", "no")):
            parsed = _degree(mod.removeprefix("omit").removeprefix("no"))
            if parsed is None:
                return None
            tones.discard(parsed[1])
        elif mod == "alt":
            tones.update((1, 8))
        else:
            parsed = _degree(mod[3:] if mod.startswith("add") else mod)
            if parsed is None:
                return None
            semis = parsed[1]
            if mod in ("b5", "#5"):  # an altered fifth replaces the fifth
                tones.discard(7)
            tones.add(semis)
    return frozenset(tones)


def nearest_quality(intervals: frozenset[int] | set[int]) -> str:
    """The ``chords.QUALITY_INTERVALS`` quality nearest to ``intervals`` (by third, fifth, seventh)."""
    from .chords import QUALITY_INTERVALS

    tones = set(intervals) | {0}
    for quality, iv in QUALITY_INTERVALS.items():
        if set(iv) == tones:
            return quality
    third = "maj" if 4 in tones else "min" if 3 in tones else "sus4" if 5 in tones else "sus2" if 2 in tones else ""
    fifth = "p" if 7 in tones else "dim" if 6 in tones else "aug" if 8 in tones else ""
    seventh = "maj7" if 11 in tones else "b7" if 10 in tones else "6" if 9 in tones else ""
    if third == "min" and fifth == "dim":
        return {"b7": "hdim7", "6": "dim7"}.get(seventh, "dim")
    if third == "maj" and fifth == "aug":
        return {"b7": "7", "maj7": "maj7"}.get(seventh, "aug")
    if third == "min":
        return {"b7": "min7", "maj7": "minmaj7", "6": "min6"}.get(seventh, "min")
    if third in ("sus4", "sus2"):
        return "sus4(b7)" if seventh == "b7" else third
    return {"b7": "7", "maj7": "maj7", "6": "maj6"}.get(seventh, "maj")  # major third, or none (C5)
