"""The output guard (harmonize/outputs.py) and the CLI's use of it: nothing clobbered, nothing left behind."""

import os
import signal
import stat
from pathlib import Path

import pytest
from midi_factory import melody_file
from tiny_models import tiny_harmonizer
from typer.testing import CliRunner

from harmonize.cli import Terminated, _unwind_on_termination, app
from harmonize.errors import StripeError
from harmonize.outputs import OutputBatch, check_distinct, check_output, write_output, write_output_text

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_harmonizer(tmp_path_factory.mktemp("tiny") / "harmonizer")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "out.txt"

    def write(tmp):  # another run creates the output while this one works
        Path(tmp).write_text("mine")
        out.write_text("theirs")

    check_output(None, out, force=False)
    with pytest.raises(StripeError, match="already exists"):
        write_output(out, write)
    assert out.read_text() == "theirs" and leftovers(tmp_path) == []


def test_umask_is_respected_and_force_keeps_the_mode(tmp_path):
    old = os.umask(0o027)
    try:
        new = write_output_text(tmp_path / "new.txt", "x")
        assert stat.S_IMODE(new.stat().st_mode) == 0o640
        os.umask(0o022)
        assert stat.S_IMODE(write_output_text(tmp_path / "b.txt", "x").stat().st_mode) == 0o644
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o604)
        write_output_text(kept, "new", force=True)
        assert kept.read_text() == "new" and stat.S_IMODE(kept.stat().st_mode) == 0o604
    finally:
        os.umask(old)


def test_special_files_are_written_into_not_replaced(tmp_path):
    write_output_text("/dev/null", "nothing", force=True)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    check_output(None, fifo, force=False)  # a pipe is written into: no --force needed, nothing replaced


def test_a_dangling_symlink_gets_its_target_written(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "target.txt")
    write_output_text(link, "hello")
    assert link.is_symlink() and (tmp_path / "target.txt").read_text() == "hello"


def test_long_names_short_temps(tmp_path):
    name = "a" * 236 + ".mid"  # 240 characters: fine, the temp name is short
    write_output_text(tmp_path / name, "x")
    assert (tmp_path / name).read_text() == "x" and leftovers(tmp_path) == []
    with pytest.raises(StripeError, match="file name too long"):
        check_output(None, tmp_path / ("b" * 300), force=False)


def test_all_or_none(tmp_path):
    first, second = tmp_path / "a.mid", tmp_path / "b.xml"
    batch = OutputBatch(force=False)
    batch.add(first, lambda p: Path(p).write_text("a"))
    batch.add(second, lambda p: Path(p).write_text("b"))
    second.write_text("someone else's")  # the second commit will fail
    with pytest.raises(StripeError, match="already exists"):
        batch.commit()
    assert not first.exists() and second.read_text() == "someone else's" and leftovers(tmp_path) == []


def test_outputs_must_be_distinct(tmp_path):
    check_distinct([tmp_path / "a", tmp_path / "b", None])
    with pytest.raises(StripeError, match="two different outputs"):
        check_distinct([tmp_path / "a", tmp_path / "x" / ".." / "a"])


def test_sigterm_while_writing_leaves_no_temp(tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        _unwind_on_termination()

        def write(tmp):
            Path(tmp).write_text("half")
            os.kill(os.getpid(), signal.SIGTERM)

        with pytest.raises(Terminated):
            write_output(tmp_path / "out.mid", write)
    finally:
        for s, h in before.items():
            signal.signal(s, h)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ through the CLI


def test_musicxml_equal_to_output_is_refused_before_any_work(model_dir, tmp_path):
    src = melody_file(tmp_path / "in.mid")
    out = tmp_path / "out.mid"
    res = run("harmonize", src, "-o", out, "--musicxml", out, "--model", model_dir, "--force")
    assert res.exit_code == 2 and "two different outputs" in res.stderr
    assert not out.exists()


def test_labels_plot_never_overwrites_the_input_or_without_force(tmp_path):
    pytest.importorskip("matplotlib")
    src = melody_file(tmp_path / "in.mid")
    link = tmp_path / "plot.png"
    link.symlink_to(src)
    before = src.read_bytes()
    res = run("labels", src, "--plot", link, "--force")
    assert res.exit_code == 2 and "input" in res.stderr and src.read_bytes() == before
    png = tmp_path / "real.png"
    png.write_text("precious")
    res = run("labels", src, "--plot", png)
    assert res.exit_code == 2 and "already exists" in res.stderr and png.read_text() == "precious"
    assert run("labels", src, "--plot", png, "--force").exit_code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_eval_json_out_never_replaces_the_data_sets_split(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "split.json").write_text('{"train": [], "val": [], "test": []}')
    res = run("eval", "--data", data, "--json-out", data / "split.json", "--force", "--no-accompaniment")
    assert res.exit_code == 2 and "input" in res.stderr
    assert (data / "split.json").read_text() == '{"train": [], "val": [], "test": []}'


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused_before_the_model_runs(model_dir, tmp_path):
    src = melody_file(tmp_path / "in.mid")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        res = run("harmonize", src, "-o", tmp_path / "ok.mid", "--musicxml", ro / "lead.xml", "--model", model_dir)
        assert res.exit_code == 2 and "permission denied" in res.stderr
        assert not (tmp_path / "ok.mid").exists()
    finally:
        ro.chmod(0o755)
