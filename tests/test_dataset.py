from pathlib import Path

import numpy as np
import pytest
import torch

from harmonize.chords import N_CLASSES
from harmonize.data import pop909
from harmonize.data.dataset import (
    CONTEXTS,
    PAD_CHORD,
    WindowDataset,
    collate,
    curriculum_length,
    input_dim,
    position_dim,
)
from harmonize.encode import encode_song

MINI = Path(__file__).parent / "fixtures" / "pop909_mini"


@pytest.fixture(scope="module")
def encoded():
    return [encode_song(pop909.load_song(MINI / s)) for s in ("098", "331", "887")]


def test_dims():
    assert position_dim("bin") == 12 and all(position_dim(c) == 1 for c in CONTEXTS if c != "bin")
    assert input_dim(("melody", "bridge")) == 256
    assert input_dim(("melody", "chroma", "meter")) == 156
    with pytest.raises(ValueError):
        input_dim(("melody", "drums"))
    with pytest.raises(ValueError):
        position_dim("phrase")


@pytest.mark.parametrize("stage", ["accompaniment", "chord"])
@pytest.mark.parametrize("context", CONTEXTS)
def test_item_shapes(encoded, stage, context):
    ds = WindowDataset(encoded, bars=4, hop_bars=4, stage=stage, context=context,
                       inputs=("melody", "bridge", "chroma", "meter"))
    item = ds[1]
    T = item["mask"].shape[0]
    assert T == 64  # 4 bars of 4/4 (window 0 starts with a pickup bar)
    assert item["x"].shape == (T, 128 + 128 + 12 + 16) and item["x"].dtype == torch.float32
    assert item["positions"].shape == (T, position_dim(context))
    assert item["positions"].dtype == torch.float32
    if stage == "accompaniment":
        assert item["target"].shape == (T, 128) and item["target"].dtype == torch.float32
    else:
        assert item["target"].shape == (T,) and item["target"].dtype == torch.int64
        assert int(item["target"].max()) < N_CLASSES
    assert item["melody_roll"].shape == (T, 128) and item["chroma"].shape == (T, 12)
    assert item["mask"].all()


def test_context_values(encoded):
    enc = encoded[1]
    ds = {c: WindowDataset([enc], bars=4, hop_bars=4, context=c) for c in CONTEXTS}
    i = 3
    lo = ds["time"].index[i][1]
    hi = ds["time"].index[i][2]
    assert torch.equal(ds["time"][i]["positions"][:, 0], torch.arange(hi - lo, dtype=torch.float32))
    rep = ds["rep"][i]["positions"][:, 0]
    assert rep[0] == 0 and set(rep.tolist()) == set(range(int(rep.max()) + 1))
    assert torch.equal(ds["key"][i]["positions"][:, 0], torch.from_numpy(enc.key_token[lo:hi]).float())
    assert torch.equal(ds["bin"][i]["positions"], torch.from_numpy(enc.chroma[lo:hi]).float())
    assert ds["none"][i]["positions"].abs().sum() == 0
    x = ds["bin"][i]["x"]
    assert torch.equal(x[:, :128], torch.from_numpy(enc.melody_roll[lo:hi]).float())


def test_meter_block_one_hot(encoded):
    ds = WindowDataset(encoded[2:], bars=2, hop_bars=2, inputs=("meter",))  # 887 is in 3/4
    m = ds[1]["x"]
    assert m.shape[1] == 16 and torch.equal(m.sum(1), torch.ones(len(m)))
    assert m.shape[0] == 24 and m[:, 12:].sum() == 0  # 3/4 bars have 12 steps


def test_windows_and_short_song(encoded):
    ds = WindowDataset(encoded, bars=16, hop_bars=4)
    assert ds.n_short == 1  # 098 has 14 bars
    short = [k for k, (s, lo, hi) in enumerate(ds.index) if s == 0]
    assert len(short) == 1 and ds[short[0]]["mask"].shape[0] == encoded[0].n_steps


def test_transpose_augmentation_reproducible(encoded):
    ds = WindowDataset(encoded, bars=4, hop_bars=4, transpose_range=5, seed=1)
    a, b = ds[2], ds[2]
    assert a["shift"] == b["shift"] and torch.equal(a["x"], b["x"])
    shifts = {ds[i]["shift"] for i in range(len(ds))}
    assert len(shifts) > 3 and all(-5 <= s <= 5 for s in shifts)
    ds.set_epoch(1)
    assert [ds[i]["shift"] for i in range(10)] != [WindowDataset(encoded, bars=4, hop_bars=4,
                                                                 transpose_range=5, seed=1)[i]["shift"]
                                                  for i in range(10)]
    # content moves with the shift
    plain = WindowDataset(encoded, bars=4, hop_bars=4)
    for i in range(6):
        it, ref = ds[i], plain[i]
        s = it["shift"]
        assert torch.equal(it["chroma"], torch.roll(ref["chroma"], s, dims=1))
        assert it["target"].sum() <= ref["target"].sum()


def test_chroma_noise_changes_context_not_target(encoded):
    clean = WindowDataset(encoded, bars=4, hop_bars=4, stage="chord", context="bin", inputs=("melody", "chroma"))
    noisy = WindowDataset(encoded, bars=4, hop_bars=4, stage="chord", context="bin", inputs=("melody", "chroma"),
                          chroma_noise=1.0)
    changed = 0
    for i in range(len(clean)):
        a, b = clean[i], noisy[i]
        assert torch.equal(a["target"], b["target"])
        assert torch.equal(a["chroma"], b["chroma"])  # eval chroma stays the truth
        assert torch.equal(b["positions"], b["x"][:, 128:])
        changed += not torch.equal(a["positions"], b["positions"])
    assert changed > len(clean) // 2
    none = WindowDataset(encoded, bars=4, hop_bars=4, context="bin", chroma_noise=0.0)
    assert torch.equal(none[0]["positions"], clean[0]["positions"])


def test_collate_pads_and_masks(encoded):
    acc = WindowDataset(encoded, bars=16, hop_bars=4, context="rep")
    chord = WindowDataset(encoded, bars=16, hop_bars=4, stage="chord")
    short = next(k for k, (s, _, _) in enumerate(acc.index) if s == 0)
    for ds in (acc, chord):
        batch = collate([ds[short], ds[short + 1]])
        T0, T1 = len(ds[short]["mask"]), len(ds[short + 1]["mask"])
        assert T0 < T1
        assert batch["x"].shape == (2, T1, 256) and batch["positions"].shape == (2, T1, ds.n_positions)
        assert batch["mask"][0, :T0].all() and not batch["mask"][0, T0:].any() and batch["mask"][1].all()
        assert batch["x"][0, T0:].abs().sum() == 0
        if ds.stage == "chord":
            assert (batch["target"][0, T0:] == PAD_CHORD).all()
            loss = torch.nn.functional.cross_entropy(torch.zeros(2 * T1, N_CLASSES), batch["target"].reshape(-1))
            assert torch.isfinite(loss)
        assert batch["name"] == [ds[short]["name"], ds[short + 1]["name"]]
    loader = torch.utils.data.DataLoader(acc, batch_size=3, collate_fn=collate)
    b = next(iter(loader))
    assert b["target"].shape[0] == 3


def test_curriculum_length():
    assert curriculum_length(0, 16, 512, 100) == 16
    assert curriculum_length(50, 16, 512, 100) == 16 + 496 * 50 // 100
    assert curriculum_length(100, 16, 512, 100) == 512
    assert curriculum_length(10_000, 16, 512, 100) == 512
    lens = [curriculum_length(s, 16, 512, 100) for s in range(120)]
    assert lens == sorted(lens)
    assert np.all(np.diff(lens) >= 0)
