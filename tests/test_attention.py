"""Linear attention: chunked == masked quadratic == recurrent; FAVOR+ -> softmax; fp32 under autocast."""

import pytest
import torch

from harmonize.model.attention import (
    FeatureMap,
    LinearState,
    linear_attention,
    linear_attention_step,
    quadratic_attention,
    softmax_attention,
)

B, H, D, M = 2, 3, 8, 5


def _inputs(T, kind, seed, n_features=16):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, T, n, generator=gen) for n in (D, D, M))
    fm = FeatureMap(kind, D, n_features)
    return fm(q, is_query=True), fm(k, is_query=False), v


def _lengths_mask(T, lengths):
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("kind", ["elu", "favor"])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("T,chunk", [(1, 4), (13, 4), (37, 8), (64, 64), (70, 16)])
def test_chunked_equals_masked_quadratic(kind, causal, T, chunk):
    phi_q, phi_k, v = _inputs(T, kind, seed=T * 7 + chunk)
    mask = _lengths_mask(T, [T, max(1, T - 5)])
    for key_mask in (None, mask):
        ref = quadratic_attention(phi_q, phi_k, v, causal, key_mask)
        # block_chunks=2 forces the loop over blocks that carries the state
        out = linear_attention(phi_q, phi_k, v, causal, chunk, key_mask, block_chunks=2)
        assert out.dtype == torch.float32 and out.shape == (B, H, T, M)
        torch.testing.assert_close(out, ref, atol=2e-5, rtol=2e-5)


def test_padding_garbage_does_not_leak():
    phi_q, phi_k, v = _inputs(10, "elu", seed=1)
    mask = _lengths_mask(10, [6, 10])
    v_bad = v.clone()
    v_bad[0, :, 6:] = float("nan")
    out = linear_attention(phi_q, phi_k, v_bad, causal=False, key_padding_mask=mask)
    ref = linear_attention(phi_q, phi_k, v, causal=False, key_padding_mask=mask)
    torch.testing.assert_close(out[0, :, :6], ref[0, :, :6])
    assert torch.isfinite(out[0, :, :6]).all()


@pytest.mark.parametrize("kind", ["elu", "favor"])
def test_recurrent_steps_equal_parallel_and_prefill(kind):
    T = 11
    phi_q, phi_k, v = _inputs(T, kind, seed=5)
    full = linear_attention(phi_q, phi_k, v, chunk_size=4)
    state = LinearState.zeros(B, H, phi_k.shape[-1], M)
    assert state.S.shape == (B, H, phi_k.shape[-1], M) and state.z.shape == (B, H, phi_k.shape[-1])
    with torch.no_grad():
        outs = []
        for t in range(T):
            y, state = linear_attention_step(phi_q[:, :, t], phi_k[:, :, t], v[:, :, t], state)
            outs.append(y)
    torch.testing.assert_close(torch.stack(outs, 2), full, atol=1e-5, rtol=1e-5)
    # prefill 7 steps with the chunked pass, then continue recurrently
    _, pre = linear_attention(phi_q[:, :, :7], phi_k[:, :, :7], v[:, :, :7], chunk_size=4, return_state=True)
    torch.testing.assert_close(pre.z, phi_k[:, :, :7].sum(2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pre.S, phi_k[:, :, :7].transpose(-1, -2) @ v[:, :, :7], atol=1e-5, rtol=1e-5)
    # the grad path (out of place) gives the same numbers
    for t in range(7, T):
        y, pre = linear_attention_step(phi_q[:, :, t], phi_k[:, :, t], v[:, :, t], pre)
    torch.testing.assert_close(y, full[:, :, -1], atol=1e-5, rtol=1e-5)
    # the chunked pass continues from a state too
    rest = linear_attention(phi_q[:, :, 7:], phi_k[:, :, 7:], v[:, :, 7:], chunk_size=4,
                            initial_state=linear_attention(phi_q[:, :, :7], phi_k[:, :, :7], v[:, :, :7],
                                                           return_state=True)[1])
    torch.testing.assert_close(rest, full[:, :, 7:], atol=1e-5, rtol=1e-5)


def test_favor_approaches_softmax_as_features_grow():
    gen = torch.Generator().manual_seed(0)
    T, d = 24, 8
    q, k = (0.5 * torch.randn(1, 2, T, d, generator=gen) for _ in range(2))
    v = torch.randn(1, 2, T, 4, generator=gen)
    exact = softmax_attention(q, k, v, causal=True)
    errors = []
    for m in (8, 64, 512, 4096):
        err = 0.0
        for seed in range(4):  # average over draws: the estimate is random
            fm = FeatureMap("favor", d, m)
            fm.redraw(torch.Generator().manual_seed(seed))
            approx = linear_attention(fm(q, True), fm(k, False), v, causal=True)
            err += (approx - exact).abs().mean().item() / 4
        errors.append(err)
    assert errors[0] > errors[1] > errors[2] > errors[3], errors
    assert errors[-1] < 0.02, errors


def test_favor_features_are_per_token_and_redraw():
    fm = FeatureMap("favor", D, 32)
    x = torch.randn(1, 1, 9, D) * 3
    whole = fm(x, is_query=False)
    alone = torch.cat([fm(x[:, :, t:t + 1], is_query=False) for t in range(9)], 2)
    # no statistic over the sequence; a batched exp of values up to ~e^10 differs in the last float bits
    torch.testing.assert_close(whole, alone, rtol=1e-5, atol=1e-4)
    assert (whole > 0).all()
    before = fm.projection.clone()
    fm.redraw()
    assert not torch.equal(before, fm.projection)
    assert "projection" in fm.state_dict()  # saved with the weights
    assert FeatureMap("elu", D).out_dim == D and fm.out_dim == 32
    with pytest.raises(ValueError):
        FeatureMap("relu", D)


def test_softmax_reference_masks_and_matches_sdpa():
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(B, H, 9, D, generator=gen) for _ in range(3))
    mask = _lengths_mask(9, [9, 4])
    for causal in (True, False):
        ref = softmax_attention(q, k, v, causal)  # SDPA path
        full = softmax_attention(q, k, v, causal, torch.ones(B, 9, dtype=torch.bool))  # explicit path
        torch.testing.assert_close(ref, full, atol=1e-5, rtol=1e-5)
    out = softmax_attention(q, k, v, False, mask)
    torch.testing.assert_close(out[1], softmax_attention(q[1:, :, :], k[1:, :, :4], v[1:, :, :4], False)[0])
    left = torch.zeros(B, 9, dtype=torch.bool)
    left[:, 3:] = True  # left padding: the first rows of a causal pass see no key
    assert torch.isfinite(softmax_attention(q, k, v, True, left)).all()


@pytest.mark.parametrize("kind", ["elu", "favor"])
def test_fp32_statistics_under_bf16_autocast(kind):
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(B, H, 20, D, generator=gen) for _ in range(3))
    fm = FeatureMap(kind, D, 16)
    ref = linear_attention(fm(q, True), fm(k, False), v, chunk_size=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        qb, kb, vb = (t @ torch.eye(D) for t in (q, k, v))  # autocast turns these matmuls into bf16
        assert qb.dtype == torch.bfloat16
        phi_q, phi_k = fm(qb, True), fm(kb, False)
        out, state = linear_attention(phi_q, phi_k, vb, chunk_size=8, return_state=True)
    assert phi_q.dtype == phi_k.dtype == out.dtype == state.kv.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=0.05, rtol=0.05)  # only the bf16 inputs differ


def test_inference_then_training_share_the_cached_prefix_matrix():
    """The chunked pass caches a small constant; made under inference_mode it must not break a later
    autograd pass (inference tensors cannot be saved for backward)."""
    phi_q, phi_k, v = _inputs(40, "elu", seed=9)
    with torch.inference_mode():
        ref = linear_attention(phi_q, phi_k, v, chunk_size=4, block_chunks=3)
    v = v.clone().requires_grad_()
    out = linear_attention(phi_q, phi_k, v, chunk_size=4, block_chunks=3)
    out.sum().backward()
    torch.testing.assert_close(out.detach(), ref)
    assert v.grad is not None and torch.isfinite(v.grad).all()


def test_elu_plus_one_is_elu_plus_one_in_every_mode():
    x = torch.linspace(-6, 6, 241).reshape(1, 1, -1, 1).expand(2, 3, -1, 4).contiguous()
    ref = torch.nn.functional.elu(x) + 1
    with torch.no_grad():
        torch.testing.assert_close(FeatureMap("elu", 4)(x, True), ref)  # exp(min(x,0)) + max(x,0)
        kept = x.clone()
        FeatureMap("elu", 4)(x, True)
        assert torch.equal(x, kept)  # not in place unless asked
        torch.testing.assert_close(FeatureMap("elu", 4)(x.clone(), True, inplace=True), ref)
    xg = x.clone().requires_grad_()
    out = FeatureMap("elu", 4)(xg, True, inplace=True)  # autograd: out of place, elu's own gradient
    out.sum().backward()
    torch.testing.assert_close(out.detach(), ref)
    torch.testing.assert_close(xg.grad, torch.where(x > 0, 1.0, torch.exp(x)))
    assert torch.equal(xg.detach(), x)
