"""Whole model: causality, recurrent == parallel for every PE, masking, checkpoints, config round trip."""

import dataclasses
import json

import pytest
import torch

from harmonize.errors import StripeError
from harmonize.model import PE_NAMES, ModelConfig, StructureTransformer, load_model, save_model


def tiny(**kw) -> ModelConfig:
    base = dict(n_in=6, n_out=5, d_model=16, n_heads=2, n_layers=2, d_ff=24, chunk_size=4, n_features=12,
                n_freqs=2, dropout=0.0)
    return ModelConfig(**(base | kw))


def batch(cfg: ModelConfig, B=2, T=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, cfg.n_in, generator=gen)
    if cfg.position_dim == 1:
        pos = torch.cumsum(torch.randint(0, 3, (B, T, 1), generator=gen), 1).float()
    else:
        pos = torch.randint(0, 2, (B, T, cfg.position_dim), generator=gen).float()
    return x, pos


@pytest.mark.parametrize("pe", ["ropepool", "fstripe", "ape", "rope_a"])
def test_causality_no_gradient_from_the_future(pe):
    cfg = tiny(pe=pe, feature_map="favor" if pe == "fstripe" else "elu", position_dim=12 if pe == "ape" else 1)
    model = StructureTransformer(cfg).eval()
    x, pos = batch(cfg, B=1, T=9)
    x.requires_grad_(True)
    t = 4
    model(x, pos)[0, t].sum().backward()
    g = x.grad[0].abs().sum(-1)
    assert (g[t + 1:] == 0).all() and (g[: t + 1] > 0).all()


@pytest.mark.parametrize("feature_map", ["elu", "favor"])
@pytest.mark.parametrize("pe", PE_NAMES)
def test_recurrent_steps_equal_parallel_pass(pe, feature_map):
    P = 12 if pe in ("ape", "rope_b", "ropepool", "fstripe1") else 1
    cfg = tiny(pe=pe, feature_map=feature_map, position_dim=P)
    torch.manual_seed(1)
    model = StructureTransformer(cfg).eval()
    x, pos = batch(cfg, T=11)
    with torch.no_grad():
        full = model(x, pos)
        state = model.init_state(2)
        steps = []
        for t in range(11):
            y, state = model.step(x[:, t], pos[:, t], state)
            steps.append(y)
        torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)
        _, state = model.prefill(x[:, :6], pos[:, :6])
        for t in range(6, 11):
            y, state = model.step(x[:, t], pos[:, t], state)
        torch.testing.assert_close(y, full[:, -1], atol=1e-5, rtol=1e-5)


def test_state_size_is_fixed_and_fp32():
    model = StructureTransformer(tiny(feature_map="favor"))
    state = model.init_state(3)
    assert len(state) == 2 and state[0].S.shape == (3, 2, 12, 8) and state[0].z.shape == (3, 2, 12)
    assert state[0].kv.dtype == torch.float32
    with pytest.raises(ValueError, match="recurrent"):
        StructureTransformer(tiny(attention="softmax")).init_state(1)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("attention", ["linear", "softmax"])
def test_padding_mask_leaves_real_steps_unchanged(causal, attention):
    cfg = tiny(causal=causal, attention=attention)
    model = StructureTransformer(cfg).eval()
    x, pos = batch(cfg, B=1, T=7)
    xp, pp = torch.cat((x, torch.randn(1, 5, cfg.n_in)), 1), torch.cat((pos, pos[:, -5:] + 100), 1)
    mask = torch.tensor([[True] * 7 + [False] * 5])
    with torch.no_grad():
        torch.testing.assert_close(model(xp, pp, mask)[:, :7], model(x, pos), atol=1e-5, rtol=1e-5)
        if not causal:  # without the mask the padding does change a bidirectional model
            assert not torch.allclose(model(xp, pp)[:, :7], model(x, pos), atol=1e-4)


def test_local_kernel_sees_neighbours_but_not_padding(tmp_path):
    cfg = tiny(causal=False, local_kernel=3)
    model = StructureTransformer(cfg).eval()
    assert model.inp.weight.shape == (cfg.d_model, cfg.n_in, 3)
    x, pos = batch(cfg, B=1, T=7)
    xp, pp = torch.cat((x, 50 * torch.randn(1, 5, cfg.n_in)), 1), torch.cat((pos, pos[:, -5:] + 100), 1)
    mask = torch.tensor([[True] * 7 + [False] * 5])
    with torch.no_grad():  # the last real step's window reaches into the padding: zeroed, not leaked
        torch.testing.assert_close(model(xp, pp, mask)[:, :7], model(x, pos), atol=1e-5, rtol=1e-5)
        # the input embedding of a step changes with its neighbour's features and not with those 2 steps away
        emb = lambda v: model._embed(v, pos)  # noqa: E731
        moved = x.clone()
        moved[0, 3] += 1.0
        changed = (emb(moved) - emb(x)).abs().sum(-1)[0] > 1e-6
        assert changed.tolist() == [False, False, True, True, True, False, False]
    save_model(model, tmp_path / "m")
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "m")(x, pos), model(x, pos))


@pytest.mark.parametrize("bad, message", [(dict(local_kernel=4), "odd"), (dict(local_kernel=0), "odd"),
                                          (dict(local_kernel=3, causal=True), "causal=False")])
def test_local_kernel_config_is_checked(bad, message):
    with pytest.raises(ValueError, match=message):
        tiny(**bad)


def test_block_kernel_convolves_neighbours_but_not_padding(tmp_path):
    cfg = tiny(causal=False, block_kernel=3)
    model = StructureTransformer(cfg).eval()
    assert all(b.conv.depthwise.weight.shape == (cfg.d_model, 1, 3) for b in model.blocks)
    x, pos = batch(cfg, B=1, T=7)
    xp, pp = torch.cat((x, 50 * torch.randn(1, 5, cfg.n_in)), 1), torch.cat((pos, pos[:, -5:] + 100), 1)
    mask = torch.tensor([[True] * 7 + [False] * 5])
    with torch.no_grad():  # each block's window reaches into the padding: zeroed, not leaked
        torch.testing.assert_close(model(xp, pp, mask)[:, :7], model(x, pos), atol=1e-5, rtol=1e-5)
        conv = model.blocks[0].conv  # alone, a block's convolution sees one step either side and no further
        h = torch.randn(1, 7, cfg.d_model)
        moved = h.clone()
        moved[0, 3] += torch.randn(cfg.d_model)  # not a constant shift, which the LayerNorm would remove
        changed = (conv(moved, None) - conv(h, None)).abs().sum(-1)[0] > 1e-6
        assert changed.tolist() == [False, False, True, True, True, False, False]
    save_model(model, tmp_path / "m")
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "m")(x, pos), model(x, pos))
    assert load_model(tmp_path / "m").config.block_kernel == 3


@pytest.mark.parametrize("bad, message", [(dict(block_kernel=2), "odd"), (dict(block_kernel=0), "odd"),
                                          (dict(block_kernel=5, causal=True), "causal=False")])
def test_block_kernel_config_is_checked(bad, message):
    with pytest.raises(ValueError, match=message):
        tiny(**bad)


def test_softmax_reference_model_and_bf16_autocast():
    cfg = tiny(attention="softmax")
    x, pos = batch(cfg)
    assert StructureTransformer(cfg)(x, pos).shape == (2, 10, 5)
    model = StructureTransformer(tiny(pe="ropepool", position_dim=1)).eval()
    x, pos = batch(model.config, T=200)
    pos = pos * 50  # large positions: angles would be garbage in bf16
    with torch.no_grad():
        ref = model(x, pos)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x, pos)
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().mean() < 0.05


def test_redraw_features_changes_favor_outputs_only():
    x, pos = batch(tiny())
    favor = StructureTransformer(tiny(feature_map="favor")).eval()
    with torch.no_grad():
        a = favor(x, pos)
        favor.redraw_features()
        assert not torch.allclose(a, favor(x, pos))
        elu = StructureTransformer(tiny()).eval()
        b = elu(x, pos)
        elu.redraw_features()
        assert torch.equal(b, elu(x, pos))


def test_config_json_round_trip_and_validation():
    cfg = tiny(pe="fstripe", feature_map="favor")
    assert ModelConfig(**json.loads(json.dumps(dataclasses.asdict(cfg)))) == cfg
    for bad in (dict(pe="rope"), dict(d_model=15), dict(feature_map="relu"), dict(n_layers=0),
                dict(d_model=18, n_heads=2, pe="ropepool")):
        with pytest.raises(ValueError):
            tiny(**bad)
    model = StructureTransformer(tiny())
    with pytest.raises(ValueError, match="expected x"):
        model(torch.zeros(1, 3, 7), torch.zeros(1, 3, 12))


@pytest.mark.parametrize("feature_map", ["elu", "favor"])
def test_save_load_round_trip(tmp_path, feature_map):
    torch.manual_seed(0)
    model = StructureTransformer(tiny(feature_map=feature_map, pe="fstripe")).eval()
    model.redraw_features()  # a fresh projection that the default init would not reproduce
    save_model(model, tmp_path / "m", extra={"epoch": 3, "context": "bin"})
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model_type"] == "StructureTransformer" and cfg["meta"] == {"epoch": 3, "context": "bin"}
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    torch.manual_seed(123)
    loaded = load_model(tmp_path / "m")
    assert not loaded.training
    x, pos = batch(model.config)
    with torch.no_grad():
        assert torch.equal(model(x, pos), loaded(x, pos))


def _saved(tmp_path):
    model = StructureTransformer(tiny())
    save_model(model, tmp_path)
    return tmp_path


def _edit_config(folder, **changes):
    path = folder / "config.json"
    cfg = json.loads(path.read_text()) | changes
    path.write_text(json.dumps(cfg))


def _as_format1(folder):
    """Make a saved model look like one written before checkpoint format 2 (no "format" key)."""
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    del cfg["format"]
    path.write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize("damage,message", [
    (lambda f: None, None),
    (lambda f: (f / "config.json").unlink(), "config not found"),
    (lambda f: (f / "model.safetensors").unlink(), "weights not found"),
    (lambda f: (f / "config.json").write_text("{not json"), "unreadable model config"),
    (lambda f: _edit_config(f, n_layerz=3), "unknown config keys: n_layerz"),
    (lambda f: _edit_config(f, pe="rope"), "invalid model config"),
    (lambda f: _edit_config(f, model_type="GPT"), "not a StructureTransformer"),
    (lambda f: _edit_config(f, d_ff=32), "has shape .* in the file"),
    (lambda f: _edit_config(f, n_layers=1), "unexpected tensor"),
    (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:300]),
     "cannot load model weights"),  # truncated
])
def test_strict_loading_errors(tmp_path, damage, message):
    folder = _saved(tmp_path)
    damage(folder)
    if message is None:
        load_model(folder)
        return
    with pytest.raises(StripeError, match=message) as info:
        load_model(folder)
    assert info.value.path is not None and str(folder) in info.value.path
    assert "\n" not in str(info.value)


def test_missing_folder_is_a_stripe_error(tmp_path):
    with pytest.raises(StripeError, match="model folder not found"):
        load_model(tmp_path / "nope")


@pytest.mark.parametrize("pe", ["ropepool", "rope_c"])
def test_format1_checkpoint_keeps_its_interleaved_pairs(tmp_path, pe):
    """A checkpoint saved before format 2 paired rotary coordinates (2i, 2i+1). Loaded now, its scores
    must still be the paper's closed form over those pairs of its own projection outputs."""
    torch.manual_seed(1)
    old = StructureTransformer(tiny(pe=pe, position_dim=1)).eval()
    save_model(old, tmp_path)
    _as_format1(tmp_path)
    new = load_model(tmp_path)
    attn_old, attn_new = old.blocks[0].attn, new.blocks[0].attn
    H, D = attn_old.n_heads, attn_old.head_dim
    x, pos = torch.randn(1, 2, 16), torch.tensor([[[3.0], [11.0]]])
    with torch.no_grad():
        q, k, _ = attn_old.qkv(x).view(1, 2, 3, H, D).unbind(2)  # the format-1 projections
        th = pos[0, :, None, :] * attn_new.pe.freqs[None, :, :, 0]  # [2, H, D/2]
        dm, dp = th[0] - th[1], th[0] + th[1]
        q1, q2, k1, k2 = q[0, 0, :, 0::2], q[0, 0, :, 1::2], k[0, 1, :, 0::2], k[0, 1, :, 1::2]
        expected = (q1 * k1 + q2 * k2) * dm.cos() + (q1 * k2 - q2 * k1) * dm.sin()
        if pe == "ropepool":  # Eq. 23
            expected = expected + (q1 * k1 - q2 * k2) * dp.sin() + (q1 * k2 + q2 * k1) * dp.cos()
        qh, kh, _ = attn_new._project(x, pos)
        torch.testing.assert_close((qh[0, 0] * kh[0, 1]).sum(-1), expected.sum(-1), atol=1e-4, rtol=1e-4)
        xs, ps = batch(new.config)
        assert not torch.equal(new(xs, ps), old(xs, ps))  # the weights really were permuted
    save_model(new, tmp_path / "again")  # re-saved as format 2: loads without migration, same outputs
    assert json.loads((tmp_path / "again" / "config.json").read_text())["format"] == 2
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "again")(xs, ps), new(xs, ps))


def test_unknown_checkpoint_format_is_refused(tmp_path):
    folder = _saved(tmp_path)
    _edit_config(folder, format=99)
    with pytest.raises(StripeError, match="format 99 is not supported"):
        load_model(folder)


def test_format1_training_checkpoint_is_not_resumed(tmp_path):
    from harmonize.train import load_checkpoint

    folder = _as_format1(_saved(tmp_path))
    model = StructureTransformer(tiny())
    with pytest.raises(StripeError, match="older stripe"):
        load_checkpoint(folder, model, torch.optim.Adam(model.parameters()))


def test_loading_a_model_does_not_import_dynamo():
    """The meta-device shape check must stay cheap: torch._dynamo alone costs ~0.7 s to import."""
    import subprocess
    import sys
    from pathlib import Path

    bundled = Path(__file__).resolve().parents[1] / "models" / "pop909-ropepool" / "chord"
    code = ("import sys, torch; from harmonize.model.checkpoint import load_model; "
            f"load_model({str(bundled)!r}); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
