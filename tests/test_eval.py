"""``stripe eval`` end to end on the POP909 fixture with a tiny model."""

import json
from pathlib import Path

import pytest
from tiny_models import tiny_harmonizer
from typer.testing import CliRunner

from harmonize.cli import app
from harmonize.evaluate import EvalConfig, evaluate

FIXTURES = Path(__file__).parent / "fixtures" / "pop909_mini"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_harmonizer(tmp_path_factory.mktemp("tiny") / "h")


def test_report_has_every_part(model_dir, tmp_path):
    report = evaluate(EvalConfig(data=str(FIXTURES), split="train", model=str(model_dir), length=8,
                                 max_songs=1, cache=str(tmp_path / "cache"), tune=True), progress=False)
    assert set(report["chords"]) == {"model", "baseline", "human"}
    human = report["chords"]["human"]
    assert human["acc_majmin"] == 1.0  # the annotations against themselves
    assert 0 <= report["chords"]["model"]["acc_majmin"] <= 1
    assert set(report["accompaniment"]) == {"oracle chords", "stage-1 chords"}
    for row in report["accompaniment"].values():
        assert -100 <= row["CS"] <= 100 and 0 <= row["NDD"] <= 100 and 0 <= row["GS"] <= 100
    assert report["counts"]["windows"] > 0 and report["tuning"]
    assert report["buckets"] == {}  # windows no longer than a 16-bar bucket are not split
    json.dumps(report)  # JSON-able


def test_cli_json_and_length_buckets(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("STRIPE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", "--data", str(FIXTURES), "--split", "train", "--model", str(model_dir),
                                   "--length", "32", "--no-chords", "--max-songs", "2", "--json", "--json-out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert json.loads(out.read_text()) == report
    assert "chords" not in report
    buckets = report["buckets"]["oracle chords"]
    assert [b["start_bar"] for b in buckets][:2] == [0, 16]


def test_cli_bad_data_folder(tmp_path):
    res = CliRunner().invoke(app, ["eval", "--data", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "nope" in res.output
