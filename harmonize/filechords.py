"""The chords a MIDI file already holds (a block-chord track under the tune), for ``stripe harmonize``.

``stripe labels`` reads the same track (``structure.find_chord_track``); ``harmonize`` uses it as it
uses ``--chords``: the chord stage is skipped and only the accompaniment is generated.
"""

from __future__ import annotations

from .song import ChordSpan, Song


def file_chords(song: Song) -> tuple[list[ChordSpan] | None, str | None]:
    """``(chords, track name)`` read from the song's chord track, or ``(None, None)`` if it has none."""
    from .structure import chords_from_notes, find_chord_track

    name = find_chord_track(song.others)
    if name is None:
        return None, None
    chords = chords_from_notes(song.others[name], song.grid)
    if all(span.chord.is_none for span in chords):
        return None, None
    return chords, name
