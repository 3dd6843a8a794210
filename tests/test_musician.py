"""What a musician touches: chord files with sharps and musicians' qualities, the file's own chords,
key-aware spelling, the lead sheet. Every behaviour is checked through the CLI where it is user-facing."""

import json

import pytest
from cli_checks import one_line_error, run
from midi_factory import song_file
from tiny_models import tiny_harmonizer
from typer.testing import CliRunner

from harmonize.chords import parse_chord
from harmonize.cli import app

runner = CliRunner()

NATURALS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
ACCIDENTALS = {"": 0, "#": 1, "b": -1}
# lead-sheet suffix, Harte quality (None: no Harte shorthand), the vocabulary class it must map to
QUALITIES = [
    ("", "maj", "maj"), ("m", "min", "min"), ("7", "7", "7"), ("maj7", "maj7", "maj7"),
    ("M7", None, "maj7"), ("m7", "min7", "min7"), ("dim", "dim", "dim"), ("aug", "aug", "aug"),
    ("+", None, "aug"), ("sus2", "sus2", "sus2"), ("sus4", "sus4", "sus4"), ("sus", None, "sus4"),
    ("6", "maj6", "maj"), ("m6", "min6", "min"), ("m7b5", "hdim7", "dim"), ("dim7", "dim7", "dim"),
    ("mmaj7", "minmaj7", "min"), ("7sus4", "sus4(b7)", "sus4"), ("9", "9", "7"), ("maj9", "maj9", "maj7"),
    ("m9", "min9", "min7"), ("add9", "maj(9)", "maj"), ("m(add9)", "min(9)", "min"), ("7b9", "7(b9)", "7"),
    ("7#9", "7(#9)", "7"), ("13", "13", "7"), ("11", "11", "7"), ("m11", "min11", "min7"),
    ("maj13", "maj13", "maj7"), ("69", "maj6(9)", "maj"), ("9sus4", "sus4(b7,9)", "sus4"),
    ("7#5", "aug(b7)", "7"), ("maj7#11", "maj7(#11)", "maj7"), ("5", "5", "maj"),
]


@pytest.mark.parametrize("suffix, harte, cls", QUALITIES, ids=[q[0] or "maj" for q in QUALITIES])
def test_every_root_accidental_and_quality_in_both_spellings(suffix, harte, cls):
    for letter, base in NATURALS.items():
        for acc, shift in ACCIDENTALS.items():
            root = letter + acc
            pc = (base + shift) % 12
            symbols = [root + suffix] + ([f"{root}:{harte}"] if harte else [])
            for symbol in symbols:
                chord = parse_chord(symbol)
                assert (chord.root, chord.class_quality) == (pc, cls), symbol
                slash = parse_chord(symbol + "/E")
                assert (slash.root, slash.class_quality, slash.bass) == (pc, cls, 4), symbol + "/E"


@pytest.mark.parametrize("bad", ["C:foo", "Cxyz", "H7", "C7q", "C:maj(x)"])
def test_unreadable_symbols_still_raise(bad):
    with pytest.raises(ValueError):
        parse_chord(bad)


@pytest.fixture
def melody(tmp_path):
    return song_file(tmp_path / "in.mid", bars=8)


def test_chord_file_reads_sharps_and_comments_only_after_whitespace(model_dir, melody, tmp_path):
    chords = tmp_path / "chords.txt"
    chords.write_text("# a comment line\n1:1 F#m   # after whitespace\n2:1 C#m7\n3:1 F#m7b5\t# tab\n"
                      "4:1 C7sus4\n5:1 Dm(add9)\n6:1 Bb6\n7:1 G13#11\n")
    out = tmp_path / "out.mid"
    res = run("harmonize", melody, "-o", out, "--model", model_dir, "--chords", chords, "--json")
    assert res.exit_code == 0, res.output
    got = [parse_chord(s) for s in json.loads(res.stdout)[0]["chords"]]
    assert [(c.root, c.class_quality) for c in got] == [
        (6, "min"), (1, "min7"), (6, "dim"), (0, "sus4"), (2, "min"), (10, "maj"), (7, "7")]


def test_chord_file_unreadable_symbol_is_one_line_error(model_dir, melody, tmp_path):
    chords = tmp_path / "chords.txt"
    chords.write_text("1:1 F#m\n2:1 C#q7\n")
    res = run("harmonize", melody, "-o", tmp_path / "o.mid", "--model", model_dir, "--chords", chords)
    assert res.exit_code == 2
    assert "line 2" in res.output and "C#q7" in res.output and "Traceback" not in res.output


def test_file_chord_track_is_used_like_a_chord_file(model_dir, melody, tmp_path):
    res = run("harmonize", melody, "-o", tmp_path / "a.mid", "--model", model_dir, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)[0]
    assert summary["chord_source"] == "the file's chord track 'Piano'"
    # song_file's piano plays C, F, G, C bar by bar
    assert summary["chords"] == ["C:maj", "F:maj", "G:maj", "C:maj", "F:maj", "G:maj", "C:maj"]
    text = run("harmonize", melody, "-o", tmp_path / "b.mid", "--model", model_dir)
    assert text.exit_code == 0 and "from the file's chord track 'Piano'" in text.output
    own = run("harmonize", melody, "-o", tmp_path / "c.mid", "--model", model_dir, "--json",
              "--ignore-file-chords")
    assert own.exit_code == 0, own.output
    assert json.loads(own.stdout)[0]["chord_source"] == "chord stage"


def test_melody_alone_uses_the_chord_stage(model_dir, tmp_path):
    from midi_factory import melody_file

    mel = melody_file(tmp_path / "m.mid")
    res = run("harmonize", mel, "-o", tmp_path / "o.mid", "--model", model_dir, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["chord_source"] == "chord stage"


def _markers(path):
    import mido

    return [m.text for t in mido.MidiFile(str(path)).tracks for m in t if m.type == "marker"]


@pytest.mark.parametrize("key, written, spelled, marker", [
    ("F minor", "C#", "Db:maj", "Db"), ("Ab major", "C#m7/G#", "Db:min7/Ab", "Dbm7/Ab"),
    ("A major", "Db", "C#:maj", "C#"), ("E major", "Ab7", "G#:7", "G#7"), ("C major", "A#", "Bb:maj", "Bb"),
])
def test_chords_are_spelled_for_the_key(model_dir, melody, tmp_path, key, written, spelled, marker):
    chords = tmp_path / "chords.txt"
    chords.write_text(f"1:1 {written}\n")
    out = tmp_path / "out.mid"
    res = run("harmonize", melody, "-o", out, "--model", model_dir, "--chords", chords, "--key", key, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)[0]
    assert summary["key"] == key and summary["chords"] == [spelled]
    assert _markers(out) == [marker]
    text = run("harmonize", melody, "-o", tmp_path / "t.mid", "--model", model_dir, "--chords", chords,
               "--key", key)
    assert f"({spelled})" in text.output


def test_lead_sheet_round_trips_through_music21(model_dir, tmp_path):
    from midi_factory import Track, make_midi, steps
    from music21 import converter

    # 3/4, F minor tune with rests and a note tied over a bar line, a block-chord track, a title meta event
    melody = [(0, 6, 77), (8, 20, 80), (24, 40, 84), (44, 48, 79), (48, 60, 77)]
    piano = [(b * 12, b * 12 + 12, p) for b, chord in enumerate([(53, 56, 60), (49, 53, 56), (48, 52, 55),
                                                                   (53, 56, 60), (53, 56, 60)]) for p in chord]
    src = make_midi(tmp_path / "my_tune.mid", [Track("Flute", steps(melody)), Track("Piano", steps(piano))],
                    time_signatures=[(0, 3, 4)])
    xml = tmp_path / "lead.musicxml"
    res = run("harmonize", src, "-o", tmp_path / "o.mid", "--model", model_dir, "--key", "F minor",
              "--chords-only", "--musicxml", xml)
    assert res.exit_code == 0, res.output
    score = converter.parse(str(xml), forceSource=True)
    assert score.metadata.bestTitle == "my tune"
    part = score.parts[0]
    assert len(score.parts) == 1 and part.partName == "Flute"
    keys = list(part.recurse().getElementsByClass("KeySignature"))
    assert keys and keys[0].sharps == -4  # F minor: four flats
    assert [t.ratioString for t in part.recurse().getElementsByClass("TimeSignature")] == ["3/4"]
    figures = [c.figure for c in part.recurse().getElementsByClass("ChordSymbol")
               if type(c).__name__ != "NoChord"]
    assert figures[:3] == ["Fm", "D-", "C"]  # spelled for F minor: Db, not C#
    measures = list(part.getElementsByClass("Measure"))
    assert all(len(m.voices) == 0 for m in measures)  # a single voice, no stray voice of rests
    for m in measures:  # every bar full: notes and rests add up to the meter
        assert sum(n.quarterLength for n in m.notesAndRests if "Chord" not in type(n).__name__) == 3.0
    pitches = [n.pitch.midi for n in part.recurse().notes if type(n).__name__ == "Note"]
    assert pitches[:2] == [77, 80]


def test_lead_sheet_title_from_the_files_name_meta(model_dir, tmp_path):
    import mido
    from music21 import converter

    src = song_file(tmp_path / "x.mid", bars=4)
    mid = mido.MidiFile(str(src))
    mid.tracks[0].insert(0, mido.MetaMessage("track_name", name="Scarborough Fair", time=0))
    mid.save(str(src))
    xml = tmp_path / "lead.musicxml"
    res = run("harmonize", src, "-o", tmp_path / "o.mid", "--model", model_dir, "--chords-only", "--musicxml", xml)
    assert res.exit_code == 0, res.output
    assert converter.parse(str(xml), forceSource=True).metadata.bestTitle == "Scarborough Fair"


def _pickup_tune(path, bars=6):
    """3/4 at tick 0 with a one-beat upbeat: the true bars start on step 4 with a half note."""
    from midi_factory import Track, make_midi, steps

    notes = [(0, 4, 67)]
    for b in range(bars):
        s = 4 + 12 * b
        notes += [(s, s + 8, 72 + (b % 3)), (s + 8, s + 12, 71)]
    return make_midi(path, [Track("Melody", steps(notes))], time_signatures=[(0, 3, 4)])


def test_pickup_detected_and_overridden(model_dir, tmp_path):
    src = _pickup_tune(tmp_path / "tune.mid")
    chords = tmp_path / "c.txt"
    chords.write_text("0:1 G\n1:1 C\n2:1 F\n")  # bar 0 is the pickup
    base = ("harmonize", src, "--model", model_dir, "--chords", chords, "--json")
    res = run(*base, "-o", tmp_path / "a.mid")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)[0]
    assert (summary["pickup_beats"], summary["pickup_source"]) == (1, "detected")
    import mido

    mid = mido.MidiFile(str(tmp_path / "a.mid"))
    ticks = []
    for track in mid.tracks:
        now = 0
        for m in track:
            now += m.time
            if m.type == "marker":
                ticks.append((now, m.text))
    assert ticks == [(0, "G"), (480, "C"), (480 + 3 * 480, "F")]  # chords on the true downbeats
    plain = ("harmonize", src, "--model", model_dir, "--json", "--chords-only")
    none = run(*plain, "-o", tmp_path / "b.mid", "--pickup", "0")
    assert json.loads(none.stdout)[0]["pickup_beats"] == 0
    off = run(*base, "-o", tmp_path / "b2.mid", "--pickup", "0")  # no pickup: no bar 0 either
    assert off.exit_code == 2 and "bar 0 is outside the song (bars 1-" in off.output
    two = run(*plain, "-o", tmp_path / "c.mid", "--pickup", "2")
    assert json.loads(two.stdout)[0]["pickup_source"] == "given"
    bad = run(*plain, "-o", tmp_path / "d.mid", "--pickup", "3")
    assert bad.exit_code == 2 and "pickup" in bad.output and "Traceback" not in bad.output
    text = run("harmonize", src, "--model", model_dir, "-o", tmp_path / "e.mid", "--chords-only")
    assert "pickup of 1 beat(s) (detected)" in text.output


def test_no_pickup_on_a_plain_tune(model_dir, melody, tmp_path):
    res = run("harmonize", melody, "-o", tmp_path / "a.mid", "--model", model_dir, "--json")
    assert json.loads(res.stdout)[0]["pickup_beats"] == 0


def test_lead_sheet_writes_the_pickup_as_bar_0(model_dir, tmp_path):
    from music21 import converter

    src = _pickup_tune(tmp_path / "tune.mid")
    xml = tmp_path / "lead.musicxml"
    res = run("harmonize", src, "-o", tmp_path / "o.mid", "--model", model_dir, "--chords-only", "--musicxml", xml)
    assert res.exit_code == 0, res.output
    part = converter.parse(str(xml), forceSource=True).parts[0]
    measures = list(part.getElementsByClass("Measure"))
    assert measures[0].number == 0 and measures[1].number == 1
    assert [t.ratioString for t in part.recurse().getElementsByClass("TimeSignature")] == ["3/4"]
    assert measures[0].duration.quarterLength == 1.0 and measures[1].duration.quarterLength == 3.0


def test_json_chords_have_seconds_and_bar_beat(model_dir, melody, tmp_path):
    chords = tmp_path / "c.txt"
    chords.write_text("1:1 C\n1:3 Am\n2:1 F\n")
    res = run("harmonize", melody, "-o", tmp_path / "a.mid", "--model", model_dir, "--chords", chords, "--json")
    assert res.exit_code == 0, res.output
    times = json.loads(res.stdout)[0]["chord_times"]
    # song_file: 120 bpm, 4/4: a beat is 0.5 s, a bar 2 s
    assert times[0] == {"chord": "C:maj", "start": 0.0, "end": 1.0, "start_bar_beat": "1:1", "end_bar_beat": "1:3"}
    assert times[1]["chord"] == "A:min" and times[1]["start"] == 1.0 and times[1]["end_bar_beat"] == "2:1"
    assert times[2]["start"] == 2.0 and times[2]["end_bar_beat"] == "end"


def test_seed_without_sampling_says_it_has_no_effect(model_dir, melody, tmp_path):
    res = run("harmonize", melody, "-o", tmp_path / "a.mid", "--model", model_dir, "--seed", "7")
    assert res.exit_code == 0 and "--seed has no effect without sampling" in res.output
    sampled = run("harmonize", melody, "-o", tmp_path / "b.mid", "--model", model_dir, "--seed", "7",
                  "--temperature", "1")
    assert sampled.exit_code == 0 and "no effect" not in sampled.output


def test_summary_names_each_stages_model(model_dir, melody, tmp_path):
    stage = model_dir / "accompaniment"
    res = run("harmonize", melody, "-o", tmp_path / "a.mid", "--model", stage, "--json")
    assert res.exit_code == 0, res.output
    stages = json.loads(res.stdout)[0]["stage_models"]
    assert stages["accompaniment"] == str(stage) and stages["chord"].startswith("bundled:")
    text = run("harmonize", melody, "-o", tmp_path / "b.mid", "--model", stage)
    assert f"accompaniment from {stage}" in text.output and "chord from bundled:" in text.output


def test_many_files_one_model_load_one_line_per_failure(model_dir, tmp_path, monkeypatch):
    from harmonize.pipeline import Harmonizer

    loads = []
    real = Harmonizer.load.__func__
    monkeypatch.setattr(Harmonizer, "load", classmethod(lambda cls, *a, **k: loads.append(1) or real(cls, *a, **k)))
    a = song_file(tmp_path / "a.mid", bars=4)
    b = song_file(tmp_path / "b.mid", bars=4)
    bad = tmp_path / "bad.mid"
    bad.write_text("not midi")
    out = tmp_path / "out"
    res = run("harmonize", a, bad, b, "-o", f"{out}/", "--model", model_dir, "--musicxml", f"{tmp_path / 'xml'}/")
    assert res.exit_code == 1
    assert (out / "a.mid").exists() and (out / "b.mid").exists() and not (out / "bad.mid").exists()
    assert (tmp_path / "xml" / "a.musicxml").exists()
    failed = [line for line in res.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "bad.mid" in failed[0]
    assert "1 of 3 files failed" in res.output and len(loads) == 1
    # a folder in, JSON out, every file fine: exit 0
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("x", "y"):
        song_file(folder / f"{name}.mid", bars=4)
    res = run("harmonize", folder, "-o", f"{tmp_path / 'out2'}/", "--model", model_dir, "--json")
    assert res.exit_code == 0, res.output
    assert sorted(s["output"] for s in json.loads(res.stdout)) == [
        str(tmp_path / "out2" / "x.mid"), str(tmp_path / "out2" / "y.mid")]


def test_many_files_need_an_output_folder(model_dir, tmp_path):
    a = song_file(tmp_path / "a.mid", bars=4)
    b = song_file(tmp_path / "b.mid", bars=4)
    res = run("harmonize", a, b, "-o", tmp_path / "o.mid", "--model", model_dir)
    assert res.exit_code == 2 and "must be a folder" in res.output


def test_eval_shows_a_progress_bar_and_tables_without_dicts(tmp_path, monkeypatch):
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "pop909_mini"
    model = tiny_harmonizer(tmp_path / "h")
    monkeypatch.setenv("STRIPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws its bar as on a terminal
    monkeypatch.setenv("COLUMNS", "200")
    res = runner.invoke(app, ["eval", "--data", str(fixtures), "--split", "train", "--model", str(model),
                              "--length", "8", "--max-songs", "2"])
    assert res.exit_code == 0, res.output
    assert "{" not in res.stdout and "'" not in res.stdout  # no Python dicts
    assert "threshold 0.5, gap 1" in res.stdout and "2 songs" in res.stdout
    assert "accompaniment" in res.stderr and "2/2" in res.stderr  # the per-song bar


def test_readme_install_matches_ci_and_gives_the_cpu_wheel():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme, ci = (root / "README.md").read_text(), (root / ".ci" / "run").read_text()
    assert "pip install -q torch==2.13.0\n" in ci and "pip install torch==2.13.0 && pip install ." in readme
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in readme


def test_labels_plot_of_a_100_bar_song_is_rows_of_bars(tmp_path):
    import struct

    path = song_file(tmp_path / "long.mid", bars=100)
    out = tmp_path / "labels.png"
    res = runner.invoke(app, ["labels", str(path), "--plot", str(out)])
    assert res.exit_code == 0, res.output
    width, height = struct.unpack(">II", out.read_bytes()[16:24])  # the PNG IHDR chunk
    assert width <= 1600 and 13 * 150 <= height <= 4000  # 13 rows of 8 bars, not a 6000-px strip


def test_folk_example_has_a_detected_pickup(tmp_path):
    from pathlib import Path

    melody = Path(__file__).resolve().parent.parent / "examples" / "folk_zwei_koenigskinder_melody.mid"
    from harmonize.io.midi import read_song
    from harmonize.pickup import beat_steps, detect_pickup

    song = read_song(melody)
    assert detect_pickup(song) == beat_steps(song.grid)  # one beat of upbeat
    assert (melody.parent / "folk_zwei_koenigskinder_lead.musicxml").exists()


TRAIN_FLAGS = ["--d-model", "16", "--layers", "1", "--heads", "2", "--batch-size", "4", "--bars", "4",
               "--epochs", "3", "--threads", "1", "--device", "cpu", "--warmup-steps", "1"]


def test_train_resume_without_data_honours_new_max_steps_and_refuses_other_changes(tmp_path, monkeypatch):
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "pop909_mini"
    monkeypatch.setenv("STRIPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no ./pop909 here: --data can only come from the run
    monkeypatch.delenv("STRIPE_POP909", raising=False)
    run_dir = tmp_path / "run"
    first = runner.invoke(app, ["train", "--data", str(fixtures), "--out", str(run_dir), "--max-steps", "2",
                                *TRAIN_FLAGS])
    assert first.exit_code == 0, first.output
    assert "done: 2 steps" in first.output
    more = runner.invoke(app, ["train", "--out", str(run_dir), "--resume", "--max-steps", "4"])
    assert more.exit_code == 0, more.output
    assert "resuming with max_steps 2 -> 4" in more.output and "done: 4 steps" in more.output
    assert json.loads((run_dir / "train_config.json").read_text())["max_steps"] == 4
    bad = runner.invoke(app, ["train", "--out", str(run_dir), "--resume", "--pe", "rope_a"])
    assert bad.exit_code == 2 and "--pe cannot change when resuming" in bad.output
    assert "Traceback" not in bad.output


def test_train_budget_counts_loading_validation_and_saving(tmp_path, monkeypatch):
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "pop909_mini"
    monkeypatch.setenv("STRIPE_CACHE", str(tmp_path / "cache"))
    import time

    t = time.perf_counter()
    res = runner.invoke(app, ["train", "--data", str(fixtures), "--out", str(tmp_path / "r"),
                              "--max-minutes", "0.0005", *TRAIN_FLAGS])  # 30 ms: loading alone is longer
    assert res.exit_code == 0, res.output
    assert "done: 0 steps" in res.output and (tmp_path / "r" / "final" / "model.safetensors").exists()
    assert time.perf_counter() - t < 30


def test_train_bar_eta_is_capped_by_the_budget():
    import time

    from harmonize.train import _progress

    bar = _progress(True)
    task_id = bar.add_task("training", total=1_000_000, completed=0, info="", deadline=time.perf_counter() + 90)
    task = bar.tasks[task_id]
    column = bar.columns[3]
    text = str(column.render(task))
    assert text in ("0:01:30", "0:01:29")  # no steps done yet: the budget's end is the only ETA


def test_labels_use_the_same_pickup_bar_lines(tmp_path):
    src = _pickup_tune(tmp_path / "tune.mid")
    res = runner.invoke(app, ["labels", str(src), "--json"])
    assert res.exit_code == 0, res.output
    bars = json.loads(res.stdout)["bars"]
    assert (bars[0]["bar"], bars[0]["start_step"], bars[1]["bar"], bars[1]["start_step"]) == (0, 0, 1, 4)
    off = json.loads(runner.invoke(app, ["labels", str(src), "--json", "--pickup", "0"]).stdout)["bars"]
    assert (off[0]["bar"], off[1]["start_step"]) == (1, 12)


@pytest.mark.parametrize("rhythm", ["bar", "half"])
def test_harmonic_rhythm_limits_where_chords_change(model_dir, melody, tmp_path, rhythm):
    res = run("harmonize", melody, "-o", tmp_path / "o.mid", "--model", model_dir, "--chords-only", "--json",
              "--harmonic-rhythm", rhythm)
    assert res.exit_code == 0, res.output
    beats = {c["start_bar_beat"].split(":")[1] for c in json.loads(res.stdout)[0]["chord_times"]}
    assert beats <= ({"1"} if rhythm == "bar" else {"1", "3"})


def test_harmonic_rhythm_unknown_is_one_line_error(model_dir, melody, tmp_path):
    res = run("harmonize", melody, "-o", tmp_path / "o.mid", "--model", model_dir, "--harmonic-rhythm", "weekly")
    one_line_error(res, "--harmonic-rhythm", "bar")
    assert not (tmp_path / "o.mid").exists()


def test_intro_outro_unknown_is_one_line_error_and_play_is_accepted(model_dir, melody, tmp_path):
    res = run("harmonize", melody, "-o", tmp_path / "o.mid", "--model", model_dir, "--intro-outro", "loud")
    one_line_error(res, "--intro-outro", "rest, play or auto")
    assert not (tmp_path / "o.mid").exists()
    res = run("harmonize", melody, "-o", tmp_path / "o.mid", "--model", model_dir, "--intro-outro", "play", "--json")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.mid").exists()


def _eighth_pickup_tune(path, bars=6):
    """6/8 at tick 0 with an eighth-note upbeat: the true bars start on step 2 with a dotted quarter."""
    from midi_factory import Track, make_midi, steps

    notes = [(0, 2, 67)]
    for b in range(bars):
        s = 2 + 12 * b
        notes += [(s, s + 6, 72 + (b % 3)), (s + 6, s + 8, 71), (s + 8, s + 10, 69), (s + 10, s + 12, 67)]
    return make_midi(path, [Track("Melody", steps(notes))], time_signatures=[(0, 6, 8)])


def test_an_eighth_note_upbeat_moves_bars_and_beats(model_dir, tmp_path):
    from harmonize.commands import read_input_song
    from harmonize.pickup import apply_pickup, detect_pickup

    src = _eighth_pickup_tune(tmp_path / "jig.mid")
    song = read_input_song(src)
    assert song.grid.beat_starts[:3] == [0, 6, 12]  # 6/8: two dotted-quarter beats a bar
    assert detect_pickup(song) == 2
    moved, steps, how = apply_pickup(song, None)
    assert (steps, how) == (2, "detected")
    assert moved.grid.bar_starts[:3] == [0, 2, 14]
    assert moved.grid.beat_starts[:4] == [0, 2, 8, 14]  # the beats follow the bar lines
    res = run("harmonize", src, "-o", tmp_path / "o.mid", "--model", model_dir, "--chords-only", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)[0]
    assert summary["pickup_source"] == "detected" and summary["pickup_beats"] == pytest.approx(1 / 3)
    # the same tune starting on its downbeat has no pickup
    plain = _eighth_pickup_tune(tmp_path / "plain.mid")
    song = read_input_song(plain)
    from dataclasses import replace

    shifted = replace(song, melody=[n for n in song.melody if n.start >= 2])
    shifted = replace(shifted, melody=[replace(n, start=n.start - 2, end=n.end - 2) for n in shifted.melody])
    assert detect_pickup(shifted) == 0
