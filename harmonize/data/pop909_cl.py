"""POP909-CL's corrected chord labels, in the seconds of POP909's own files (``../shared/pop909-cl/README``).

POP909-CL's ``POP909_processed/NNN.mid`` re-times each song onto a clean grid: track ``piano`` holds POP909's
MELODY, BRIDGE and PIANO notes merged, track ``chords`` (in some files ``MIDI 01``) the corrected chords as block chords. Matching the two
files' notes (both sorted by onset and pitch, the same pitches in the same order) maps the grid's seconds to
POP909's seconds (a note more or less on either side is skipped); each block chord is read through that mapping
(its root: the bass note, as POP909-CL writes root position, when a vocabulary chord on it sounds; else the best
template, ``chords.chord_from_pitch_classes``). Training (``stripe train --cl``) and evaluation
(``--labels cl``, the benchmarks) both read POP909-CL through here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..chords import Chord, chord_from_pitch_classes, sounding_chord_on
from ..errors import StripeError
from ..song import ChordSpan, Grid


def _load(path: Path):
    import pretty_midi

    if not path.exists():
        raise StripeError("file is missing", path)
    try:
        return pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # pretty_midi/mido raise many types on corrupt files
        raise StripeError(f"cannot read MIDI ({type(e).__name__}: {e})", path) from e


# the share of the notes (of the larger file) that must pair up. Of the train and val songs four pair under
# 41 % (553: 5 %): other arrangements, whose chords land at the wrong times (they agree with POP909's own labels
# on 2-64 % of the beats, against 94 % on average for the rest); every other song pairs at least 67 %
# (python -m benchmarks.cl_alignment)
MIN_MATCHED_SHARE = 0.5


def block_chord(pitches) -> Chord:
    """The chord of a block of MIDI pitches: on the bass when a vocabulary chord on it sounds (extensions
    allowed: C E G B D is Cmaj7, not Em7), else the closest template."""
    pcs = {int(p) % 12 for p in pitches}
    on_bass = sounding_chord_on(int(min(pitches)) % 12, pcs)
    return on_bass if on_bass is not None else chord_from_pitch_classes(pcs)


def time_map(cl_midi: Path, song_midi: Path, min_share: float = MIN_MATCHED_SHARE):
    """(the POP909-CL file, a function from its seconds to POP909's seconds, the share of notes that pair):
    the mapping comes from the paired notes; under ``min_share`` of them pairing is an error."""
    cl = _load(cl_midi)
    src = _load(song_midi)
    piano = next((i for i in cl.instruments if i.name.strip().lower() == "piano"), None)
    if piano is None:
        raise StripeError("no 'piano' track", cl_midi)
    a = sorted((n.start, n.pitch) for n in piano.notes)
    b = sorted((n.start, n.pitch) for i in src.instruments for n in i.notes)
    # the same pitches in the same order: pair them (a note more or less on either side is skipped)
    import difflib

    matcher = difflib.SequenceMatcher(None, [p for _, p in a], [p for _, p in b], autojunk=False)
    pairs = [(i + k, j + k) for i, j, size in matcher.get_matching_blocks() for k in range(size)]
    share = len(pairs) / max(len(a), len(b), 1)
    if share < min_share or len(pairs) < 2:
        raise StripeError(f"only {len(pairs)} of {max(len(a), len(b))} notes match {song_midi}: cannot align", cl_midi)
    x = np.array([a[i][0] for i, _ in pairs])
    y = np.array([b[j][0] for _, j in pairs])
    # one source time per grid time (the median of the notes there), increasing
    keys, inverse = np.unique(np.round(x, 6), return_inverse=True)
    med = np.array([np.median(y[inverse == k]) for k in range(len(keys))])
    med = np.maximum.accumulate(med)
    if len(keys) < 2:
        raise StripeError("too few notes to align", cl_midi)
    slope_lo = (med[1] - med[0]) / (keys[1] - keys[0])
    slope_hi = (med[-1] - med[-2]) / (keys[-1] - keys[-2])

    def to_source(t):
        t = np.asarray(t, dtype=np.float64)
        out = np.interp(t, keys, med)
        out = np.where(t < keys[0], med[0] + (t - keys[0]) * slope_lo, out)
        return np.where(t > keys[-1], med[-1] + (t - keys[-1]) * slope_hi, out)

    return cl, to_source, share


def song_cl_chords(cl_root: Path, song_dir: Path, grid: Grid) -> list[ChordSpan]:
    """POP909-CL's chords of the POP909 song folder ``song_dir`` (``NNN/NNN.mid``), from the POP909-CL folder
    ``cl_root`` (``POP909_processed/NNN.mid``), as spans on ``grid``."""
    sid = Path(song_dir).name
    return read_cl_chords(Path(cl_root) / "POP909_processed" / f"{sid}.mid", Path(song_dir) / f"{sid}.mid", grid)


def read_cl_chords(cl_midi: Path, song_midi: Path, grid: Grid,
                   min_share: float = MIN_MATCHED_SHARE) -> list[ChordSpan]:
    """POP909-CL's chords for the song of ``song_midi``, as spans on ``grid`` (POP909's annotated grid)."""
    cl, to_source, _ = time_map(Path(cl_midi), Path(song_midi), min_share)
    return chords_through(cl, to_source, grid, cl_midi)


def chords_through(cl, to_source, grid: Grid, cl_midi: Path) -> list[ChordSpan]:
    """The block chords of ``cl`` (the POP909-CL file ``cl_midi``, read by ``time_map``) through its time map
    ``to_source``, as spans on ``grid``."""
    # the chord track: named "chords" (some files call it "MIDI 01"), else the one track besides "piano"
    others = [i for i in cl.instruments if i.name.strip().lower() != "piano" and i.notes]
    named = [i for i in others if i.name.strip().lower() == "chords"]
    if not named and len(others) != 1:
        raise StripeError("no chord track", cl_midi)
    track = (named or others)[0]
    blocks: dict[tuple[float, float], list[int]] = {}
    for n in track.notes:
        blocks.setdefault((round(n.start, 6), round(n.end, 6)), []).append(n.pitch)
    spans = []
    for (start, end), pitches in sorted(blocks.items()):
        lo, hi = (int(s) for s in grid.time_to_step(to_source([start, end])))
        if hi > lo:
            spans.append(ChordSpan(lo, hi, block_chord(pitches)))
    if not spans:
        raise StripeError("no chords inside the song's beats", cl_midi)
    return spans
