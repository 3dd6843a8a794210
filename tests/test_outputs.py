"""The output guard (``harmonize/io/outputs.py``): every file the CLI writes, through the real CLI where it
matters. Each test names the attack from issue 12 it holds against."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_checks import names, one_line_error, run
from midi_factory import song_file

from harmonize.errors import StripeError
from harmonize.io import outputs as outputs_module
from harmonize.io.outputs import Outputs, write_outputs

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "pop909_mini"


@pytest.fixture
def src(tmp_path):
    return song_file(tmp_path / "in.mid", bars=4)


def writer(text: str):
    return lambda tmp: Path(tmp).write_text(text)


# --------------------------------------------------------------------------------- refusals up front


def test_clashing_outputs_refused_before_any_work(model_dir, src, tmp_path):
    out = tmp_path / "out.mid"
    for flags in ([], ["--force"]):
        result = run("harmonize", src, "-o", out, "--musicxml", out, "--model", model_dir, *flags)
        one_line_error(result, out, "named twice as an output")
    assert names(tmp_path) == ["in.mid"]


def test_input_is_never_an_output_even_with_force(model_dir, src, tmp_path):
    before = src.read_bytes()
    link = tmp_path / "link.mid"
    link.symlink_to(src)
    hard = tmp_path / "hard.mid"
    os.link(src, hard)
    for out in (src, link, hard):
        one_line_error(run("harmonize", src, "-o", out, "--model", model_dir, "--force"), out,
                       "refusing to overwrite the input")
    assert src.read_bytes() == before


def test_chord_file_is_an_input_too(model_dir, src, tmp_path):
    chords = tmp_path / "chords.txt"
    chords.write_text("0 C\n")
    one_line_error(run("harmonize", src, "-o", tmp_path / "o.mid", "--musicxml", chords, "--chords", chords,
                       "--model", model_dir, "--force"), chords, "refusing to overwrite the input")
    assert chords.read_text() == "0 C\n"


def unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    try:  # root writes anywhere but on a read-only mount (/sys in containers)
        Outputs(["/sys/stripe-probe.mid"])
    except StripeError:
        return Path("/sys")
    pytest.skip("no unwritable folder for this user")


def test_unwritable_folder_refused_before_the_model_runs(model_dir, src, tmp_path, monkeypatch):
    """-o in a read-only folder, and --musicxml there with -o writable: one-line error, nothing written,
    and the model never loaded."""
    ro = unwritable_folder(tmp_path)
    from harmonize import pipeline

    def no_model(*a, **k):
        raise AssertionError("the model ran")

    monkeypatch.setattr(pipeline.Harmonizer, "load", no_model)
    one_line_error(run("harmonize", src, "-o", ro / "out.mid", "--model", model_dir), ro / "out.mid", "cannot write")
    out = tmp_path / "out.mid"
    one_line_error(run("harmonize", src, "-o", out, "--musicxml", ro / "lead.musicxml", "--model", model_dir),
                   ro / "lead.musicxml", "cannot write")
    assert not out.exists()


def test_long_names_use_short_temps_and_too_long_is_one_line(model_dir, src, tmp_path):
    out = tmp_path / ("x" * 236 + ".mid")  # 240 bytes: fine, though '.<name>.tmp.mid' would not be
    result = run("harmonize", src, "-o", out, "--model", model_dir)
    assert result.exit_code == 0, result.output
    assert out.exists()
    too_long = tmp_path / ("y" * 296 + ".mid")
    one_line_error(run("harmonize", src, "-o", too_long, "--model", model_dir), too_long, "over the 255-byte limit")


def test_missing_folder_and_folder_target(tmp_path):
    with pytest.raises(StripeError, match="does not exist"):
        Outputs([tmp_path / "nope" / "a.json"])
    (tmp_path / "d").mkdir()
    with pytest.raises(StripeError, match="is a folder"):
        Outputs([tmp_path / "d"], force=True)


# ---------------------------------------------------------------------------------- nothing clobbered


def test_concurrent_run_is_not_replaced(tmp_path):
    """Two runs writing the same new file: the one that finishes second is refused, not silently
    replacing the first (the file is created with os.link, never renamed over)."""
    out = tmp_path / "out.json"
    guard = Outputs([out])  # both runs checked while nothing existed
    with pytest.raises(StripeError, match="created by someone else"):
        with guard:
            guard.stage(out, writer("second"))
            out.write_text("first")  # the other run wins the race meanwhile
    assert out.read_text() == "first"
    assert names(tmp_path) == ["out.json"]


@pytest.fixture
def b_fails_to_land(tmp_path, monkeypatch):
    """Creating ``tmp_path / 'b.xml'`` fails (a full disk at the last moment); other links work."""
    b = tmp_path / "b.xml"
    real_link = os.link

    def link(src, dst, **kw):
        if Path(dst) == b:
            raise OSError(28, "No space left on device")
        return real_link(src, dst, **kw)

    monkeypatch.setattr(outputs_module.os, "link", link)
    return b


def test_all_or_none(tmp_path, b_fails_to_land):
    """The second of two outputs fails to land: the first one is taken back, temps are gone."""
    a, b = tmp_path / "a.mid", b_fails_to_land
    with pytest.raises(StripeError, match="No space left"):
        write_outputs({a: writer("A"), b: writer("B")})
    assert names(tmp_path) == []


def test_all_or_none_with_force_restores_the_old_files(tmp_path, b_fails_to_land):
    a, b = tmp_path / "a.mid", b_fails_to_land
    a.write_text("old a")
    with pytest.raises(StripeError):
        write_outputs({a: writer("A"), b: writer("B")}, force=True)
    assert a.read_text() == "old a" and names(tmp_path) == ["a.mid"]


def test_musicxml_failure_leaves_no_midi(model_dir, src, tmp_path, monkeypatch):
    from harmonize.io import leadsheet

    def broken(song, chords, **kw):
        def write(tmp):
            raise OSError(30, "Read-only file system")
        return write

    monkeypatch.setattr(leadsheet, "lead_sheet_writer", broken)
    result = run("harmonize", src, "-o", tmp_path / "out.mid", "--musicxml", tmp_path / "lead.musicxml",
                 "--model", model_dir)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert names(tmp_path) == ["in.mid"]


def test_dev_null_is_written_into_not_replaced(model_dir, src, tmp_path):
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    one_line_error(run("harmonize", src, "-o", "/dev/null", "--model", model_dir), "/dev/null", "already exists")
    result = run("harmonize", src, "-o", "/dev/null", "--model", model_dir, "--force")
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_dangling_symlink_writes_its_target(tmp_path):
    target = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_outputs({link: writer("{}")})
    assert link.is_symlink() and target.read_text() == "{}"
    bad = tmp_path / "bad.json"
    bad.symlink_to(tmp_path / "nope" / "x.json")
    with pytest.raises(StripeError, match="whose folder does not exist"):
        Outputs([bad])
    assert bad.is_symlink()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_new_files_follow_the_umask_and_force_keeps_the_mode(tmp_path, mask):
    old = os.umask(mask)
    try:
        out = tmp_path / "new.json"
        write_outputs({out: writer("1")})
        assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
        kept = tmp_path / "kept.json"
        kept.write_text("0")
        kept.chmod(0o640)
        write_outputs({kept: writer("1")}, force=True)
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "1"
    finally:
        os.umask(old)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_leave_no_temp(tmp_path, sig):
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from harmonize.io.outputs import Outputs
        out = Path({str(tmp_path / 'out.mid')!r})
        def slow(tmp):
            Path(tmp).write_bytes(b"half")
            print("writing", flush=True)
            time.sleep(30)
        with Outputs([out]) as guard:
            guard.stage(out, slow)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert any(p.name.startswith(".stripe-") for p in tmp_path.iterdir())
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == 128 + sig
    assert names(tmp_path) == []


# ------------------------------------------------------------------------------ labels and eval too


def test_labels_plot_guarded(src, tmp_path):
    link = tmp_path / "plot.png"
    link.symlink_to(src)
    before = src.read_bytes()
    one_line_error(run("labels", src, "--plot", link, "--force"), link, "refusing to overwrite the input")
    assert src.read_bytes() == before
    png = tmp_path / "out.png"
    png.write_bytes(b"old")
    one_line_error(run("labels", src, "--plot", png), png, "already exists")
    assert png.read_bytes() == b"old"
    result = run("labels", src, "--plot", png, "--force")
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_outputs_guarded_before_the_work(tmp_path, monkeypatch):
    from harmonize import evaluate

    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    report = tmp_path / "report.json"
    report.write_text("keep")
    one_line_error(run("eval", "--data", FIXTURES, "--json-out", report), report, "already exists")
    one_line_error(run("eval", "--data", FIXTURES, "--plot", report), report, "already exists")
    split = FIXTURES / "split.json"
    one_line_error(run("eval", "--data", FIXTURES, "--json-out", split, "--force"), split, "inside the input folder")
    one_line_error(run("eval", "--data", FIXTURES, "--end-to-end", "--json-out", split, "--force"), split,
                   "inside the input folder")
    assert report.read_text() == "keep"


def test_sigterm_during_harmonize_leaves_nothing(model_dir, src, tmp_path):
    """The same through the real CLI in a process: killed while the MIDI is being written, no output, no
    temp file, exit 143."""
    out = tmp_path / "out.mid"
    script = textwrap.dedent(f"""
        import sys, time
        from harmonize.io import midi
        real = midi._save_with_tracks
        def slow(mid, chunks, path):
            real(mid, chunks, path)
            print("writing", flush=True)
            time.sleep(30)
        midi._save_with_tracks = slow
        sys.argv = ["stripe", "harmonize", {str(src)!r}, "-o", {str(out)!r}, "--model", {str(model_dir)!r}]
        from harmonize.cli import main
        main()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert names(tmp_path) == ["in.mid"]
