import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from harmonize.data import pop909
from harmonize.errors import StripeError
from harmonize.song import Key, Note
from harmonize.structure import chord_classes_per_step

MINI = Path(__file__).parent / "fixtures" / "pop909_mini"


@pytest.fixture
def mini(tmp_path) -> Path:
    """A writable copy of the fixture folder (tests corrupt or touch files in it)."""
    dst = tmp_path / "pop909"
    shutil.copytree(MINI, dst)
    return dst


def test_load_song_grid_notes_key():
    song = pop909.load_song(MINI / "331")
    beats = np.loadtxt(MINI / "331" / "beat_midi.txt")
    assert song.name == "pop909/331"
    assert song.n_steps == 4 * (len(beats) - 1)
    np.testing.assert_allclose(song.grid.step_times[::4], beats[:, 0])
    # 4/4: bar starts are the third-column flags
    flagged = [4 * i for i in np.flatnonzero(beats[:-1, 2])]
    assert song.grid.bar_starts == ([0] if flagged[0] else []) + flagged
    assert song.grid.time_signatures == [(0, 4, 4)]
    assert song.key == Key(0, "major")  # key_audio.txt says C:maj
    # melody is monophonic and every note is inside the grid with positive length
    for track in (song.melody, song.bridge, song.piano):
        assert track and all(0 <= n.start < n.end <= song.n_steps for n in track)
    ends = [n.end for n in song.melody]
    starts = [n.start for n in song.melody]
    assert all(e <= s for e, s in zip(ends, starts[1:], strict=False))
    assert song.chords and song.chords[0].start >= 0


def test_triple_metre_uses_short_measure_flags():
    song = pop909.load_song(MINI / "887")
    assert song.grid.time_signatures == [(0, 3, 4)]
    gaps = np.diff(song.grid.bar_starts[1:])
    assert np.bincount(gaps).argmax() == 12  # 3 beats x 4 steps


def test_midi_chords_follow_file():
    song = pop909.load_song(MINI / "887")
    first = open(MINI / "887" / "chord_midi.txt").readline().split()
    assert song.chords[0].chord.symbol == "F#:min" == first[2]
    assert song.chords[0].start == int(song.grid.time_to_step(float(first[0])))


def test_structure_chords_agree_with_midi_chords():
    for sid in ("098", "331", "887"):
        a = pop909.load_song(MINI / sid)
        b = pop909.load_song(MINI / sid, MINI / "structure" / sid, chord_source="structure")
        ca, cb = chord_classes_per_step(a.chords, a.n_steps), chord_classes_per_step(b.chords, b.n_steps)
        both = (ca > 0) & (cb > 0)
        assert both.mean() > 0.8
        assert (ca[both] == cb[both]).mean() >= 0.75, sid


def test_structure_source_needs_folder():
    with pytest.raises(StripeError):
        pop909.load_song(MINI / "331", None, chord_source="structure")


def test_top_line_keeps_highest_and_cuts_overlaps():
    notes = [Note(0, 8, 60), Note(0, 4, 64), Note(2, 6, 67), Note(10, 12, 50)]
    line = pop909.top_line(notes)
    assert [(n.start, n.end, n.pitch) for n in line] == [(0, 2, 64), (2, 6, 67), (10, 12, 50)]


def test_unknown_chord_symbol_names_file_and_line(mini):
    path = mini / "331" / "chord_midi.txt"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\tC:weird"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(StripeError) as e:
        pop909.load_song(mini / "331")
    assert e.value.path == str(path) and "line 3" in e.value.message and "C:weird" in e.value.message


def test_load_split_skips_broken_and_counts(mini, tmp_path, caplog):
    (mini / "098" / "098.mid").unlink()
    (mini / "887" / "chord_midi.txt").write_text("0.5 1.0 H:maj\n")
    songs = pop909.load_split(mini, "train", cache_dir=tmp_path / "c")
    assert songs == [] and songs.n_skipped == 2
    assert {i for i, _ in songs.skipped} == {98, 887}
    assert any("098" in r.message for r in caplog.records)
    val = pop909.load_split(mini, "val", cache_dir=False)
    assert [s.name for s in val] == ["pop909/331"] and val.n_skipped == 0


def test_absent_songs_are_counted(mini):
    split = json.loads((mini / "split.json").read_text())
    split["val"] = [331, 5]
    (mini / "split.json").write_text(json.dumps(split))
    songs = pop909.load_split(mini, "val", cache_dir=False)
    assert len(songs) == 1 and songs.absent == [5]


def test_split_ids_packaged_and_local(mini):
    assert pop909.split_song_ids("val", mini) == [331]
    packaged = pop909.split_song_ids("val")
    assert len(packaged) == 86 and 331 not in packaged
    assert len(pop909.split_song_ids("train", mini.parent)) == 692  # no split.json there
    with pytest.raises(StripeError):
        pop909.split_song_ids("nope")


def _count_loads(monkeypatch):
    calls = []
    real = pop909.load_song

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(pop909, "load_song", counting)
    return calls


def test_cache_hit_miss_and_invalidation(mini, tmp_path, monkeypatch):
    calls = _count_loads(monkeypatch)
    cache = tmp_path / "cache"
    a = pop909.load_song_cached(mini / "331", cache_dir=cache)
    b = pop909.load_song_cached(mini / "331", cache_dir=cache)
    assert len(calls) == 1 and a.melody == b.melody and a.chords == b.chords
    assert not list(cache.glob("*.tmp"))
    # touching a source file (same contents) is still a hit; changing its contents is a miss
    p = mini / "331" / "chord_midi.txt"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    pop909.load_song_cached(mini / "331", cache_dir=cache)
    assert len(calls) == 1
    p.write_text(p.read_text() + "\n")
    pop909.load_song_cached(mini / "331", cache_dir=cache)
    assert len(calls) == 2
    pop909.load_song_cached(mini / "331", cache_dir=cache)
    assert len(calls) == 2
    # a new format version -> rebuilt
    monkeypatch.setattr(pop909, "FORMAT_VERSION", pop909.FORMAT_VERSION + 1)
    pop909.load_song_cached(mini / "331", cache_dir=cache)
    assert len(calls) == 3
    # chord sources are cached apart
    s = pop909.load_song_cached(mini / "331", mini / "structure" / "331", "structure", cache_dir=cache)
    assert len(calls) == 4 and s.chords != a.chords


def test_corrupt_cache_entry_is_a_miss(mini, tmp_path, monkeypatch, caplog):
    cache = tmp_path / "cache"
    pop909.load_song_cached(mini / "098", cache_dir=cache)
    (cache / "098-midi.npz").write_bytes(b"garbage")
    calls = _count_loads(monkeypatch)
    song = pop909.load_song_cached(mini / "098", cache_dir=cache)
    assert len(calls) == 1 and song.name == "pop909/098"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "098-midi.npz" in warnings[0] and "\n" not in warnings[0]
    assert pop909.load_song_cached(mini / "098", cache_dir=cache).melody == song.melody  # rewritten: a hit
    assert len(calls) == 1


class _Evil:
    """Unpickling this runs ``open(marker, 'w')``: the marker file appears only if code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant(entry: Path, marker: Path, how: str) -> None:
    import pickle

    evil = pickle.dumps({"key": "whatever", "song": _Evil(marker)})
    if how == "pickle":  # a pickle under the entry's own name
        entry.write_bytes(evil)
    elif how == "npy_object":  # a well-formed .npz whose header array is a pickled object array
        arr = np.empty(1, dtype=object)
        arr[0] = _Evil(marker)
        with open(entry, "wb") as f:
            np.savez(f, header=arr)
    elif how == "old_pkl":  # the old cache's file name, as a shared data folder might still hold
        entry.with_suffix(".pkl").write_bytes(evil)
    else:
        entry.write_bytes(os.urandom(512))


@pytest.mark.parametrize("how", ["pickle", "npy_object", "old_pkl", "garbage"])
def test_planted_cache_entry_never_runs_code(mini, tmp_path, how):
    """A crafted pickle (or anything else) in ``<data>/.stripe-cache`` is never executed; the song loads."""
    cache = mini / ".stripe-cache"
    cache.mkdir()
    marker = tmp_path / "pwned"
    for name in ("098-midi.npz", "331-midi.npz"):
        _plant(cache / name, marker, how)
    songs = pop909.load_split(mini, "val") + pop909.load_split(mini, "train")
    assert not marker.exists()
    assert {s.name for s in songs} >= {"pop909/331"}
    assert pop909.load_song_cached(mini / "098").melody == pop909.load_song(mini / "098").melody
    assert not marker.exists()


def test_cache_round_trip_keeps_every_field(mini, tmp_path):
    from harmonize.io.songfile import song_from_file, song_to_bytes

    song = pop909.load_song(mini / "331", mini / "structure" / "331", "structure")
    song.others = {"Strings": song.piano[:5], "Pad #2": []}
    entry = tmp_path / "s.npz"
    entry.write_bytes(song_to_bytes(song, "k"))
    back = song_from_file(entry, "k")
    assert song_from_file(entry, "other key") is None
    for f in ("name", "melody", "bridge", "piano", "chords", "key", "tempo_bpm", "melody_track", "others"):
        assert getattr(back, f) == getattr(song, f), f
    np.testing.assert_array_equal(back.grid.step_times, song.grid.step_times)
    assert (back.grid.bar_starts, back.grid.beat_starts, back.grid.time_signatures) == (
        song.grid.bar_starts, song.grid.beat_starts, song.grid.time_signatures)
def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("STRIPE_CACHE", str(tmp_path / "x"))
    assert pop909.default_cache_dir(MINI) == tmp_path / "x"
    monkeypatch.delenv("STRIPE_CACHE")
    assert pop909.default_cache_dir(tmp_path) == tmp_path / ".stripe-cache"


def test_parallel_load_matches_serial(mini, tmp_path):
    serial = pop909.load_split(mini, "train", cache_dir=False)
    parallel = pop909.load_split(mini, "train", cache_dir=tmp_path / "c", workers=2)
    assert [s.name for s in serial] == [s.name for s in parallel] == ["pop909/098", "pop909/887"]
    assert serial[1].piano == parallel[1].piano


def test_windows_on_bar_boundaries():
    song = pop909.load_song(MINI / "331")
    ws = pop909.windows(song, bars=4, hop_bars=2)
    bars = song.grid.bar_starts
    assert ws[0] == (0, bars[4]) and not ws[0].short
    assert all(w.start in bars and (w.end in bars or w.end == song.n_steps) for w in ws)
    assert all(bars.index(b.start) - bars.index(a.start) == 2 for a, b in zip(ws, ws[1:], strict=False))
    # the last window is full: no partial window at the end
    last = bars.index(ws[-1].start)
    assert last + 4 <= len(bars)
    assert len(ws) == (len(bars) - 4) // 2 + 1


def test_short_song_gives_one_flagged_window():
    song = pop909.load_song(MINI / "098")  # 14 bars
    ws = pop909.windows(song, bars=16, hop_bars=4)
    assert ws == [(0, song.n_steps)] and ws[0].short


@pytest.mark.pop909
def test_integration_val_songs(pop909_dir, pop909_structure_dir, tmp_path):
    songs = pop909.load_split(pop909_dir, "val", pop909_structure_dir, cache_dir=tmp_path, limit=4)
    assert len(songs) == 4 and songs.n_skipped == 0
    for s in songs:
        assert s.key is not None and s.n_bars > 16 and len(s.melody) > 50
    struct = pop909.load_split(
        pop909_dir, "val", pop909_structure_dir, chord_source="structure", cache_dir=tmp_path, limit=4
    )
    for a, b in zip(songs, struct, strict=False):
        ca, cb = chord_classes_per_step(a.chords, a.n_steps), chord_classes_per_step(b.chords, b.n_steps)
        both = (ca > 0) & (cb > 0)
        assert (ca[both] == cb[both]).mean() > 0.6


def test_structure_chord_lines(tmp_path):
    p = tmp_path / "finalized_chord.txt"
    p.write_text("B:maj [3, 6, 11] 11 2 \nA:maj(9) [1, 4, 9, 11] 9 4\nN [] 7\nC:min7(11)\x01 [0, 3, 7, 10, 5] 0 1\n")
    got = pop909.read_structure_chords(p)
    assert [(c.symbol, q) for c, q in got] == [("B:maj", 2), ("A:maj", 4), ("N", 7), ("C:min7", 1)]
    p.write_text("B:maj 3 6\n")
    with pytest.raises(StripeError, match="line 1"):
        pop909.read_structure_chords(p)
