"""Fuzzing the MIDI reader and ``stripe harmonize`` (hypothesis, tiny random model).

The contract, for any input file: either success (the output file is written, the input file is
unchanged and the input's own tracks are copied message for message) or a ``StripeError`` (in the CLI:
one line ``error: <path>: <message>``, exit code 2, no traceback), and in both cases no temporary file
left in the output folder and no output file after a failure.

Inputs: random MIDI files built with mido (notes, tempos, meters, resolutions, track counts, type 0/1,
drums, odd names) and byte-level corruptions (flips, truncations, insertions, deletions, duplications) of
real files (the POP909 fixtures and midi_factory songs).

Bounded by default (``STRIPE_FUZZ_EXAMPLES``, default 200 cases over the four tests, derandomized so CI
is stable); ``STRIPE_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz.py`` is the long run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from midi_factory import RES, Track, make_midi, song_file, steps
from tiny_models import tiny_harmonizer
from typer.testing import CliRunner

from harmonize.errors import StripeError
from harmonize.io.midi import read_song, write_harmonized
from harmonize.pipeline import HarmonizeOptions, Harmonizer
from harmonize.song import Key

TOTAL = int(os.environ.get("STRIPE_FUZZ_EXAMPLES", "200"))
# share of the examples per test: in-process random files, in-process corruptions, CLI (both kinds)
N_RANDOM, N_CORRUPT, N_CLI_RANDOM = (max(5, TOTAL * p // 100) for p in (40, 40, 10))
N_CLI_CORRUPT = max(5, TOTAL - N_RANDOM - N_CORRUPT - N_CLI_RANDOM)
FIXTURES = Path(__file__).parent / "fixtures" / "pop909_mini"


def fuzz_settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------------------- the inputs


NAMES = ["Melody", "MELODY", "Lead vocal", "BRIDGE", "Piano", "Strings", "", "Drums", "Chords",
         "Accompaniment", "track 0", "bass\x00line", "x" * 200]


@st.composite
def random_midi(draw) -> tuple[int, list, list, list, int]:
    """(resolution, tracks, tempos, time signatures, type): small, but with every odd corner reachable."""
    res = draw(st.sampled_from([1, 3, 24, 96, 100, 220, 384, 480, 960, 1920, 32767]))
    n_tracks = draw(st.integers(1, 6))
    span = 64 * res  # 16 bars of 4/4 at most, so cases stay fast
    tracks = []
    for t in range(n_tracks):
        notes = draw(st.lists(st.tuples(st.integers(0, span), st.integers(0, 8 * res), st.integers(0, 127),
                                        st.integers(1, 127)), max_size=40))
        tracks.append(Track(draw(st.sampled_from(NAMES)), [(s, s + d, p, v) for s, d, p, v in notes],
                            program=draw(st.integers(0, 127)), drums=draw(st.booleans()) and t > 0,
                            channel=draw(st.one_of(st.none(), st.integers(0, 15)))))
    bpm = st.one_of(st.floats(20, 400), st.floats(20, 400), st.floats(20, 400), st.floats(3.6, 3000))
    tempos = draw(st.lists(st.tuples(st.integers(0, span), bpm), max_size=5))
    if draw(st.booleans()):
        tempos = [(0, draw(st.floats(20, 300))), *tempos]
    sigs = draw(st.lists(st.tuples(st.integers(0, span), st.integers(1, 32),
                                   st.sampled_from([1, 2, 4, 8, 16, 32, 64])), max_size=4))
    midi_type = draw(st.sampled_from([0, 1, 1]))
    return res, tracks, tempos, sigs, midi_type


def write_random(path: Path, spec) -> Path:
    res, tracks, tempos, sigs, midi_type = spec
    return make_midi(path, tracks, resolution=res, tempos=tempos, time_signatures=sigs, midi_type=midi_type)


@st.composite
def corruption(draw) -> list[tuple]:
    """A short list of byte edits; positions are fractions of the file length (files differ in size)."""
    op = st.one_of(
        st.tuples(st.just("flip"), st.floats(0, 1), st.integers(0, 255)),
        st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
        st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 64)),
        st.tuples(st.just("duplicate"), st.floats(0, 1), st.integers(1, 64)),
        st.tuples(st.just("header"), st.integers(8, 13), st.integers(0, 255)),  # type, ntrks, division
    )
    return draw(st.lists(op, min_size=1, max_size=4))


def corrupt(data: bytes, edits: list[tuple]) -> bytes:
    buf = bytearray(data)
    for kind, where, arg in edits:
        pos = min(len(buf), int(where * len(buf))) if kind != "header" else where
        if kind == "flip" and pos < len(buf):
            buf[pos] = arg
        elif kind == "header" and pos < len(buf):
            buf[pos] = arg
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = arg
        elif kind == "delete":
            del buf[pos : pos + arg]
        elif kind == "duplicate":
            buf[pos:pos] = buf[pos : pos + arg]
    return bytes(buf)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    """Real files to corrupt: the two smaller POP909 fixtures and midi_factory songs (type 0 and 1)."""
    folder = tmp_path_factory.mktemp("seeds")
    files = {p.name: p.read_bytes() for p in sorted(FIXTURES.glob("*/*.mid")) if p.stat().st_size < 5000}
    files["song.mid"] = song_file(folder / "song.mid", bars=4, tempos=[(0, 100.0), (8 * RES, 90.0)],
                                  time_signatures=[(0, 3, 4), (12 * RES, 4, 4)]).read_bytes()
    files["type0.mid"] = make_midi(folder / "t0.mid", [Track("Lead", steps([(i * 2, i * 2 + 2, 60 + i % 12)
                                                                            for i in range(32)]))],
                                   midi_type=0).read_bytes()
    return files


@pytest.fixture(scope="module")
def harmonizer(tmp_path_factory) -> Harmonizer:
    return Harmonizer.load(str(model_dir_of(tmp_path_factory)))


_MODEL: dict[str, Path] = {}


def model_dir_of(tmp_path_factory) -> Path:
    if "dir" not in _MODEL:
        _MODEL["dir"] = tiny_harmonizer(tmp_path_factory.mktemp("tiny") / "harmonizer")
    return _MODEL["dir"]


options = st.builds(
    HarmonizeOptions,
    key=st.one_of(st.none(), st.builds(Key, st.integers(0, 11), st.sampled_from(["major", "minor"]))),
    temperature=st.sampled_from([0.0, 0.0, 1.0, 3.0]),
    seed=st.integers(0, 2**31),
    density=st.sampled_from([0.05, 0.3, 1.0]),
    accompaniment=st.booleans(),
)


# ------------------------------------------------------------------------------------- the contract


def original_tracks(path: Path) -> list[list]:
    return [list(track) for track in mido.MidiFile(str(path)).tracks]


def same_track(written, original: list) -> bool:
    """Message for message, except an end-of-track that a damaged input lacked and mido adds on saving
    (the MIDI standard requires it; notes, times and every other event are untouched)."""
    written = list(written)
    if original and original[-1].type == "end_of_track" or not written:
        return written == original
    return written[:-1] == original and written[-1] == mido.MetaMessage("end_of_track", time=0)


def check_in_process(path: Path, harmonizer: Harmonizer, opts: HarmonizeOptions) -> str:
    """read_song + Harmonizer + write_harmonized on one file; asserts the contract; 'ok' or 'error'."""
    before = path.read_bytes()
    out_dir = Path(tempfile.mkdtemp(dir=path.parent))
    out = out_dir / "out.mid"
    try:
        song = read_song(path)
        result = harmonizer(song, opts)
        assert result.chords and result.chords[0].start == 0 and result.chords[-1].end == song.n_steps
        write_harmonized(path, out, result.chords, song.grid, result.accompaniment, melody=song.melody)
    except StripeError as err:
        assert err.message and "\n" not in str(err), repr(err)
        assert str(err.path) == str(path), (err.path, path)  # the error names the file it is about
        assert not out.exists()
        outcome = "error"
    else:
        tracks = original_tracks(path)
        written = mido.MidiFile(str(out)).tracks
        assert len(written) == len(tracks) + 1 + (result.accompaniment is not None)
        for i, track in enumerate(tracks):
            assert same_track(written[i], track), f"track {i} changed"
        outcome = "ok"
    assert path.read_bytes() == before
    assert sorted(p.name for p in out_dir.iterdir()) == (["out.mid"] if outcome == "ok" else [])
    return outcome


runner = CliRunner()


def check_cli(path: Path, model_dir: Path, extra: list[str]) -> str:
    before = path.read_bytes()
    out_dir = Path(tempfile.mkdtemp(dir=path.parent))
    out = out_dir / "out.mid"
    from harmonize.cli import app

    res = runner.invoke(app, ["harmonize", str(path), "-o", str(out), "--model", str(model_dir), *extra])
    assert "Traceback" not in res.output
    assert path.read_bytes() == before
    if res.exit_code == 0:
        assert out.exists() and sorted(p.name for p in out_dir.iterdir()) == ["out.mid"]
        return "ok"
    assert res.exit_code == 2, res.output  # exit 1 would be an internal error: a bug
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), res.stderr
    assert list(out_dir.iterdir()) == []
    return "error"


# ---------------------------------------------------------------------------------------- the tests


@fuzz_settings(N_RANDOM)
@given(spec=random_midi(), opts=options)
def test_random_files_in_process(tmp_path_factory, harmonizer, spec, opts):
    folder = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    event(check_in_process(write_random(folder / "in.mid", spec), harmonizer, opts))


@fuzz_settings(N_CORRUPT)
@given(data=st.data(), edits=corruption(), opts=options)
def test_corrupted_files_in_process(tmp_path_factory, harmonizer, seeds, data, edits, opts):
    name = data.draw(st.sampled_from(sorted(seeds)))
    folder = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    path = folder / "in.mid"
    path.write_bytes(corrupt(seeds[name], edits))
    event(check_in_process(path, harmonizer, opts))


cli_flags = st.lists(st.sampled_from([["--chords-only"], ["--temperature", "1.5"], ["--key", "A minor"],
                                      ["--density", "0.2"], ["--seed", "5"], ["--json"]]), max_size=2)


@fuzz_settings(N_CLI_RANDOM)
@given(spec=random_midi(), flags=cli_flags)
def test_random_files_cli(tmp_path_factory, spec, flags):
    folder = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    event(check_cli(write_random(folder / "in.mid", spec), model_dir_of(tmp_path_factory), sum(flags, [])))


@fuzz_settings(N_CLI_CORRUPT)
@given(data=st.data(), edits=corruption(), flags=cli_flags)
def test_corrupted_files_cli(tmp_path_factory, seeds, data, edits, flags):
    name = data.draw(st.sampled_from(sorted(seeds)))
    folder = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    path = folder / "in.mid"
    path.write_bytes(corrupt(seeds[name], edits))
    event(check_cli(path, model_dir_of(tmp_path_factory), sum(flags, [])))
