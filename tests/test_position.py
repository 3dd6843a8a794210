"""Positional encodings: pre-feature-map scores equal the paper's closed forms (paper.md Eqs. 14/15/23)."""

import math

import pytest
import torch

from harmonize.model.position import PE_NAMES, AbsolutePE, angles, halves, make_positional_encoding

H, D = 2, 8


def _positions(P: int, gen: torch.Generator) -> torch.Tensor:
    """Two positions [1, 2, P]: scalar reals, or binary chroma vectors."""
    if P == 1:
        return torch.rand(1, 2, 1, generator=gen) * 50
    return torch.randint(0, 2, (1, 2, P), generator=gen).float()


def _score(pe, q, k, pos):
    """Per-head score q̂_m·k̂_n for query at pos[:,0] and key at pos[:,1]: q, k are [H, D]."""
    qq = torch.stack((q, torch.zeros_like(q)))[None]  # [1, T=2, H, D]: q at step 0
    kk = torch.stack((torch.zeros_like(k), k))[None]  # k at step 1
    qh, kh = pe(qq, kk, pos)
    return (qh[0, 0] * kh[0, 1]).sum(-1)  # [H]


def _pair_angles(pe, pos):
    th = angles(pos, pe.freqs)[0]  # [2, H, n]
    return th[0], th[1]


@pytest.mark.parametrize("name", ["rope_a", "rope_b", "rope_c"])
@pytest.mark.parametrize("P", [1, 12])
def test_rope_score_is_eq14(name, P):
    gen = torch.Generator().manual_seed(hash((name, P)) % 2**31)
    pe = make_positional_encoding(name, D, H, P)
    assert pe.out_dim == D
    for _ in range(5):
        q, k, pos = torch.randn(H, D, generator=gen), torch.randn(H, D, generator=gen), _positions(P, gen)
        a_m, a_n = _pair_angles(pe, pos)
        dm = a_m - a_n
        (q1, q2), (k1, k2) = halves(q), halves(k)
        expected = ((q1 * k1 + q2 * k2) * dm.cos() + (q1 * k2 - q2 * k1) * dm.sin()).sum(-1)
        torch.testing.assert_close(_score(pe, q, k, pos), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("P", [1, 12])
def test_ropepool_score_is_eq23(P):
    gen = torch.Generator().manual_seed(P)
    pe = make_positional_encoding("ropepool", D, H, P)
    assert pe.out_dim == D // 2
    for _ in range(5):
        q, k, pos = torch.randn(H, D, generator=gen), torch.randn(H, D, generator=gen), _positions(P, gen)
        a_m, a_n = _pair_angles(pe, pos)
        dm, dp = a_m - a_n, a_m + a_n
        (q1, q2), (k1, k2) = halves(q), halves(k)
        expected = ((q1 * k1 + q2 * k2) * dm.cos() + (q1 * k2 - q2 * k1) * dm.sin()
                    + (q1 * k1 - q2 * k2) * dp.sin() + (q1 * k2 + q2 * k1) * dp.cos()).sum(-1)
        torch.testing.assert_close(_score(pe, q, k, pos), expected, atol=1e-4, rtol=1e-4)


def test_ropepool_unit_pairs_give_eq26():
    """With unit-norm pairs q = (cos ψ, sin ψ): score = Σ_d 2 cos(ψ_q + fξ_m − π/4) cos(ψ_k + fξ_n − π/4)."""
    pe = make_positional_encoding("ropepool", 2, 1, 1)
    psi_q, psi_k, xi_m, xi_n = 0.3, -1.1, 2.0, 0.5
    q = torch.tensor([[math.cos(psi_q), math.sin(psi_q)]])
    k = torch.tensor([[math.cos(psi_k), math.sin(psi_k)]])
    f = pe.freqs.item()
    expected = 2 * math.cos(psi_q + f * xi_m - math.pi / 4) * math.cos(psi_k + f * xi_n - math.pi / 4)
    got = _score(pe, q, k, torch.tensor([[[xi_m], [xi_n]]]))
    assert got.item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("P", [1, 12])
def test_fstripe1_score_is_eq15_plus_cross_terms(P):
    """Pooled F-StrIPE₁: Σ_{d,d'} q_d k_d' cos(f_d p_m − f_d' p_n); the d = d' part is Eq. 15."""
    gen = torch.Generator().manual_seed(10 + P)
    pe = make_positional_encoding("fstripe1", D, H, P)
    assert pe.out_dim == 2
    for _ in range(5):
        q, k, pos = torch.randn(H, D, generator=gen), torch.randn(H, D, generator=gen), _positions(P, gen)
        a_m, a_n = _pair_angles(pe, pos)  # [H, D]
        full = (q[:, :, None] * k[:, None, :] * (a_m[:, :, None] - a_n[:, None, :]).cos()).sum((-1, -2))
        torch.testing.assert_close(_score(pe, q, k, pos), full, atol=1e-4, rtol=1e-4)
        # one active dimension: no cross terms, exactly Eq. 15
        e = torch.zeros(H, D)
        e[:, 3] = 1.0
        eq15 = (q * e * k * (a_m - a_n).cos()).sum(-1)
        torch.testing.assert_close(_score(pe, q * e, k * e, pos), eq15, atol=1e-4, rtol=1e-4)


def test_fstripe_general_score_is_eq11_rff_form():
    gen = torch.Generator().manual_seed(3)
    nf, P = 3, 12
    pe = make_positional_encoding("fstripe", D, H, P, n_freqs=nf)
    with torch.no_grad():
        for p in (pe.gains, pe.phase_q, pe.phase_k):
            p.copy_(torch.randn(p.shape, generator=gen))
    assert pe.out_dim == 2 * nf
    q, k, pos = torch.randn(H, D, generator=gen), torch.randn(H, D, generator=gen), _positions(P, gen)
    th = angles(pos, pe.freqs)[0].unflatten(-1, (D, nf))  # [2, H, D, nf]
    am, an = th[0] + pe.phase_q, th[1] + pe.phase_k
    lam = pe.gains
    arg = am[:, :, None, :] - an[:, None, :, :]  # [H, d, d', ω]
    w = q[:, :, None, None] * k[:, None, :, None] * lam[:, :, None, :] * lam[:, None, :, :]
    expected = (w * arg.cos()).sum((1, 2, 3)) / nf
    torch.testing.assert_close(_score(pe, q, k, pos).detach(), expected.detach(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("P", [1, 12])
def test_rope_is_relative_ropepool_is_not(P):
    gen = torch.Generator().manual_seed(20 + P)
    rope, pool = make_positional_encoding("rope_c", D, H, P), make_positional_encoding("ropepool", D, H, P)
    q, k = torch.randn(H, D, generator=gen), torch.randn(H, D, generator=gen)
    pos = _positions(P, gen)
    shift = torch.randn(1, 1, P, generator=gen) * 3
    torch.testing.assert_close(_score(rope, q, k, pos), _score(rope, q, k, pos + shift), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(_score(pool, q, k, pos), _score(pool, q, k, pos + shift), atol=1e-3)
    # key at +δ and −δ from the query, same content: RoPE symmetric, RoPEPool not
    delta = torch.rand(1, 1, P, generator=gen) + 0.5
    plus, minus = torch.cat((pos[:, :1], pos[:, :1] + delta), 1), torch.cat((pos[:, :1], pos[:, :1] - delta), 1)
    torch.testing.assert_close(_score(rope, q, q, plus), _score(rope, q, q, minus), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(_score(pool, q, q, plus), _score(pool, q, q, minus), atol=1e-3)


def test_learnable_frequencies_on_binary_chroma_give_nontrivial_angles():
    torch.manual_seed(0)
    chords = torch.randint(0, 2, (1, 200, 12)).float()
    for name in ("rope_a", "rope_b", "rope_c", "ropepool", "fstripe1"):
        pe = make_positional_encoding(name, D, H, 12)
        th = angles(chords, pe.freqs)
        # distinct chords must get angles that differ by a sizeable fraction of a turn
        spread = torch.remainder(th, 2 * math.pi).std(dim=1)
        assert spread.mean() > 0.5, name


def test_factory_names_and_params():
    learnable = {"rope_c", "fstripe1", "fstripe", "ropepool"}
    for name in PE_NAMES:
        pe = make_positional_encoding(name, D, H, 1, n_freqs=2)
        assert (sum(p.numel() for p in pe.parameters()) > 0) == (name in learnable), name
    with pytest.raises(ValueError, match="unknown positional encoding"):
        make_positional_encoding("rope_z", D, H, 1)
    with pytest.raises(ValueError, match="even"):
        make_positional_encoding("ropepool", 7, H, 1)


def test_absolute_pe_shapes():
    ape = AbsolutePE(16, 1)
    out = ape(torch.arange(5.0)[None, :, None])
    assert out.shape == (1, 5, 16)
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0, 1.0] * 8))  # sin 0, cos 0
    assert AbsolutePE(16, 12)(torch.ones(2, 3, 12)).shape == (2, 3, 16)
