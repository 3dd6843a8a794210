"""The lead sheet (``stripe harmonize --musicxml``): what a musician opens in MuseScore.

One part, named after the melody track, holding the melody as a single voice, bar by bar on the file's own
bar lines (rests fill the gaps, notes crossing a bar line are tied), the file's meter, the key signature
of the key used, chord symbols above the staff (spelled for the key), and a title taken from the file's own
name meta event, else from the file name. Written with music21 (imported here: it is slow).
"""

from __future__ import annotations

from pathlib import Path

from ..song import STEPS_PER_QUARTER, ChordSpan, Key, Note, Song

_GENERIC_NAMES = ("", "untitled", "track", "track 1", "track 0", "melody", "tempo track", "conductor")


def title_of(midi_path: str | Path | None, song: Song) -> str:
    """The file's own title (a track-name or text meta event in its first track, when that track holds
    no notes of the song), else the file name made readable (``my_song-2`` -> ``my song 2``)."""
    if midi_path is not None:
        try:
            import mido

            mid = mido.MidiFile(str(midi_path))
            first = mid.tracks[0] if mid.tracks else []
            has_notes = any(m.type == "note_on" for m in first)
            for msg in first:
                if msg.type == "track_name" and not has_notes or (msg.type == "text" and mid.type != 0):
                    text = msg.name if msg.type == "track_name" else msg.text
                    if text.strip().lower() not in _GENERIC_NAMES and text.strip() != song.melody_track:
                        return text.strip()
        except Exception:  # the title is cosmetic: never fail a lead sheet over it
            pass
    return song.name.replace("_", " ").replace("-", " ").strip() or "Lead sheet"


def _monophonic(notes: list[Note]) -> list[Note]:
    """One voice: the highest note at each onset, each cut where the next one starts."""
    by_start: dict[int, Note] = {}
    for n in notes:
        if n.end > n.start and (n.start not in by_start or n.pitch > by_start[n.start].pitch):
            by_start[n.start] = n
    ordered = [by_start[s] for s in sorted(by_start)]
    out = []
    for n, nxt in zip(ordered, ordered[1:] + [None], strict=True):
        end = min(n.end, nxt.start) if nxt is not None else n.end
        out.append(Note(n.start, end, n.pitch, n.velocity) if end != n.end else n)
    return out


def m21_key(key: Key):
    from music21 import key as m21key

    from ..spelling import tonic_name

    return m21key.Key(tonic_name(key).replace("b", "-"), key.mode)


def write_lead_sheet(song: Song, chords: list[ChordSpan] | None, out_path: str | Path, key: Key | None = None,
                     title: str | None = None, force: bool = False) -> Path:
    """The lead sheet written to ``out_path`` through the output guard (no overwrite without ``force``)."""
    from .midi import check_output

    out = Path(out_path)
    with check_output(None, out, force) as guard:
        guard.stage(out, lead_sheet_writer(song, chords, key=key, title=title))
    return out


def lead_sheet_writer(song: Song, chords: list[ChordSpan] | None, key: Key | None = None, title: str | None = None):
    """What ``write_lead_sheet`` writes, as a function of the path to write it to (for ``Outputs.stage``)."""
    from music21 import harmony, metadata, meter, note, stream, tie

    from ..spelling import pitch_name
    from .midi import _M21_KIND, _meter_for_length, _nominal_meter

    q = 1.0 / STEPS_PER_QUARTER
    grid = song.grid
    bounds = list(grid.bar_starts) + [grid.n_steps]
    if bounds[0] != 0:
        bounds = [0] + bounds
    melody = _monophonic(song.melody)
    spans = sorted((s for s in chords or () if s.end > s.start), key=lambda s: s.start)
    part = stream.Part()
    part.partName = song.melody_track or "Melody"
    part.id = "melody"
    prev_ts = None
    i = 0  # first melody note that may still sound
    n_bars = len(bounds) - 1

    def full_length(step: int) -> int:
        num, den = _nominal_meter(grid, step)
        return round(num * 16 / den)

    # a short first bar before full ones is a pickup (bar 0); a short last bar is the rest of the tune
    pickup = n_bars > 1 and bounds[1] - bounds[0] < full_length(0) and bounds[2] - bounds[1] == full_length(0)
    for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        if hi <= lo:
            continue
        measure = stream.Measure(number=b if pickup else b + 1)
        nominal = _nominal_meter(grid, lo)
        short = hi - lo < full_length(lo)
        if (b == 0 and pickup) or (b == n_bars - 1 and short and b > 0):
            ts = nominal  # written in the tune's meter, as an incomplete bar
            if b == 0:
                measure.paddingLeft = (full_length(lo) - (hi - lo)) * q
            else:
                measure.paddingRight = (full_length(lo) - (hi - lo)) * q
        else:
            ts = nominal if full_length(lo) == hi - lo else _meter_for_length(hi - lo)
        if ts != prev_ts:
            measure.timeSignature = meter.TimeSignature(f"{ts[0]}/{ts[1]}")
            prev_ts = ts
        if b == 0 and key is not None:
            measure.insert(0, m21_key(key))
        cursor = lo
        while i < len(melody) and melody[i].end <= lo:
            i += 1
        for n in melody[i:]:
            if n.start >= hi:
                break
            start, end = max(n.start, lo), min(n.end, hi)
            if start > cursor:
                rest = note.Rest(quarterLength=(start - cursor) * q)
                measure.insert((cursor - lo) * q, rest)
            m21 = note.Note(n.pitch, quarterLength=(end - start) * q)
            if n.start < lo or n.end > hi:
                m21.tie = tie.Tie("continue" if n.start < lo and n.end > hi else "start" if n.start >= lo else "stop")
            measure.insert((start - lo) * q, m21)
            cursor = end
        if cursor < hi:
            measure.insert((cursor - lo) * q, note.Rest(quarterLength=(hi - cursor) * q))
        for span in spans:
            if lo <= span.start < hi:
                if span.chord.is_none:
                    sym = harmony.NoChord()
                else:
                    sym = harmony.ChordSymbol(root=pitch_name(span.chord.root, key).replace("b", "-"),
                                              kind=_M21_KIND[span.chord.quality])
                    if span.chord.bass is not None and span.chord.bass != span.chord.root:
                        sym.bass(pitch_name(span.chord.bass, key).replace("b", "-"))
                sym.writeAsChord = False
                measure.insert((span.start - lo) * q, sym)
        part.append(measure)
    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = title or song.name
    score.metadata.movementName = title or song.name
    score.metadata.addContributor(metadata.Contributor(role="arranger", name="stripe (chords)"))
    score.insert(0, part)
    return lambda tmp: score.write("musicxml", fp=tmp)
