"""Positional encodings applied to queries and keys before the feature map (paper.md §1.3-1.5).

Every variant has one interface: ``pe(q, k, positions) -> (q_hat, k_hat)`` with q, k of shape
[B, T, H, D] and positions [B, T, P] (P = 1 for TIME/REP/KEY, P = 12 for the BIN chroma vector).
``pe.out_dim`` tells the attention the width D' of q_hat/k_hat, which then go through φ.

The angle of frequency d at step i is f_dᵀ p_i with f_d ∈ R^P, so a scalar position is the P = 1 case.
Rotary pairs are the two halves of the head dim: coordinate i pairs with i + D/2. The paper's pairs
(2d-1, 2d) are the same maths under a fixed permutation of the q/k projection outputs (which the model
learns anyway); contiguous halves let CPU kernels vectorise, where stride-2 slices do not (pooling q and
k is 3.6x faster at N=4096). Checkpoints saved before format 2 used interleaved pairs: checkpoint.py
permutes their q/k projection rows when loading them.

Frequency choices (not given by the paper):
- rope_a: f_i = 10000^(-i/(D/2)), identical for all heads (standard RoPE).
- rope_b / learnable init for P = 1: head h uses the same ladder with base 10000^((h+1)/H), so with
  4 heads the bases are 10, 100, 1000, 10000: heads range from local (fast rotation only) to global.
- fixed variants with P > 1: f_i ⊗ w with w_p = 2^p, i.e. the ladder applied to the chord's bitmask id
  (0..4095), so every distinct chroma vector gets a distinct angle.
- learnable variants with P > 1: f ~ U(0, π) per (head, frequency, chroma dim); a binary chord of 3-4
  notes then has angles of order 1-5 rad, and two chords differing by one note differ by ~U(0, π).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

PE_NAMES = ("none", "ape", "rope_a", "rope_b", "rope_c", "fstripe1", "fstripe", "ropepool")


# The small constant tables below are made on the CPU even inside ``with torch.device("meta")`` (the checkpoint
# loader's shape check): arange on the meta device runs a decomposition that imports torch._dynamo, 0.7 s.
def geometric_frequencies(n_heads: int, n: int, per_head: bool, base: float = 10000.0) -> Tensor:
    """[H, n] ladder base_h^(-i/n); base_h = base for all heads, or base^((h+1)/H) when per_head."""
    i = torch.arange(n, dtype=torch.float64, device="cpu") / n
    if per_head:
        bases = base ** ((torch.arange(n_heads, dtype=torch.float64, device="cpu") + 1) / n_heads)
    else:
        bases = torch.full((n_heads,), base, dtype=torch.float64, device="cpu")
    return (bases[:, None] ** -i[None, :]).float()


def init_frequencies(n_heads: int, n: int, position_dim: int, kind: str) -> Tensor:
    """Frequencies [H, n, P] for kind in {'a' (shared fixed), 'b' (per-head fixed), 'learn'}."""
    if position_dim == 1:
        return geometric_frequencies(n_heads, n, per_head=kind != "a")[..., None]
    if kind == "learn":
        return torch.rand(n_heads, n, position_dim, device="cpu") * math.pi
    bitmask = 2.0 ** torch.arange(position_dim, dtype=torch.float32, device="cpu")
    return geometric_frequencies(n_heads, n, per_head=kind != "a")[..., None] * bitmask


def angles(positions: Tensor, freqs: Tensor) -> Tensor:
    """θ[b,t,h,i] = f_{h,i}ᵀ p_{b,t}: positions [B,T,P], freqs [H,n,P] -> [B,T,H,n] (fp32).

    The result is a [B,T,H,n] view of a head-major [B,H,T,n] tensor: elementwise ops that take it as
    their first operand then produce head-major outputs, which is the layout attention wants, so the
    encoded q̂, k̂ need no transposing copy."""
    positions = positions.float()
    if freqs.shape[-1] == 1:  # a broadcast multiply beats a K=1 matmul
        theta = positions[:, None, :, :] * freqs[None, :, None, :, 0]
    else:
        theta = torch.einsum("btp,hnp->bhtn", positions, freqs)
    return theta.transpose(1, 2)


def halves(x: Tensor) -> tuple[Tensor, Tensor]:
    """The two coordinates of every rotary pair: the first and second half of the last dim."""
    n = x.shape[-1] // 2
    return x[..., :n], x[..., n:]


class PositionalEncoding(nn.Module):
    """Identity (``none`` and ``ape``: the absolute encoding is added to the input, not here)."""

    returns_new_tensors = False  # True: q̂, k̂ are fresh tensors that the attention may overwrite

    def __init__(self, head_dim: int):
        super().__init__()
        self.out_dim = head_dim

    def forward(self, q: Tensor, k: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        return q, k


class RoPE(PositionalEncoding):
    """Rotary encoding (Eqs. 21-22): rotate each pair by f_dᵀp; unpooled, D' = D.

    Score (Eq. 14): Σ_d (q1k1 + q2k2) cos Δ⁻_d + (q1k2 − q2k1) sin Δ⁻_d, with Δ⁻_d = f_dᵀ(p_m − p_n).
    """

    returns_new_tensors = True

    def __init__(self, head_dim: int, n_heads: int, position_dim: int, kind: str):
        super().__init__(head_dim)
        if head_dim % 2:
            raise ValueError(f"rotary encodings need an even head dim, got {head_dim}")
        freqs = init_frequencies(n_heads, head_dim // 2, position_dim, kind)
        if kind == "learn":
            self.freqs = nn.Parameter(freqs)
        else:
            self.register_buffer("freqs", freqs)

    def _rotate(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x1, x2 = halves(x)
        return torch.cat((cos * x1 - sin * x2, cos * x2 + sin * x1), dim=-1)

    def forward(self, q: Tensor, k: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        theta = angles(positions, self.freqs)
        cos, sin = theta.cos(), theta.sin()
        return self._rotate(q, cos, sin), self._rotate(k, cos, sin)


class RoPEPool(RoPE):
    """RoPE followed by a per-pair coordinate sum (paper.md §1.5), D' = D/2.

    c_d = [R(θ_d)a]_1 + [R(θ_d)a]_2 = a_{2d-1}(cos + sin)(θ_d) + a_{2d}(cos − sin)(θ_d) with Eq. 22's
    rotation, which gives exactly the Δ⁻ and Δ⁺ terms of Eq. 23 and Eq. 26. (paper.md §1.5 writes the
    coefficients the other way round, (cos − sin) on a_{2d-1}; that is the rotation by −θ_d and flips the
    sign of both sin terms of Eq. 23, so it is a sign slip there.) Learnable per-head frequencies, as RoPE(C).
    """

    def __init__(self, head_dim: int, n_heads: int, position_dim: int):
        super().__init__(head_dim, n_heads, position_dim, "learn")
        self.out_dim = head_dim // 2

    def forward(self, q: Tensor, k: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        theta = angles(positions, self.freqs)
        cos, sin = theta.cos(), theta.sin()
        plus, minus = cos + sin, cos - sin  # shared by q and k

        def pool(x: Tensor) -> Tensor:  # plus first: the output takes its head-major layout
            x1, x2 = halves(x)
            return torch.addcmul(plus * x1, x2, minus)

        return pool(q), pool(k)


class FStripe(PositionalEncoding):
    """F-StrIPE in its RFF form (Eqs. 11-12), pooled over the head dim: D' = 2·N_f.

    P^{Q/K}_d = [cos(f_dωᵀp + θ^{Q/K}_dω), sin(...)]_ω · λ_dω / √N_f and q̂ = Σ_d q_d P^Q_d, so
    q̂·k̂ = (1/N_f) Σ_{d,d',ω} q_d k_d' λ_dω λ_d'ω cos(f_dωᵀp_m + θ^Q_dω − f_d'ωᵀp_n − θ^K_d'ω).
    The d = d' terms are Eq. 11; the paper argues the cross terms vanish, here they are kept (exact
    pooling). ``minimal=True`` is F-StrIPE₁ (Eq. 15/19/20): N_f = 1, no gains and no phases.
    """

    returns_new_tensors = True

    def __init__(self, head_dim: int, n_heads: int, position_dim: int, n_freqs: int, minimal: bool):
        super().__init__(head_dim)
        self.n_freqs = n_freqs
        self.out_dim = 2 * n_freqs
        freqs = init_frequencies(n_heads, head_dim * n_freqs, position_dim, "learn")
        self.freqs = nn.Parameter(freqs)  # [H, D*N_f, P], index d*N_f + ω
        self.minimal = minimal
        if not minimal:
            self.gains = nn.Parameter(torch.ones(n_heads, head_dim, n_freqs))
            self.phase_q = nn.Parameter(torch.zeros(n_heads, head_dim, n_freqs))
            self.phase_k = nn.Parameter(torch.zeros(n_heads, head_dim, n_freqs))

    def _pool(self, x: Tensor, theta: Tensor) -> Tensor:
        # x [B,T,H,D], theta [B,T,H,D,N_f] -> [B,T,H,2N_f]: (cos terms, sin terms)
        if self.minimal:
            return torch.cat((torch.einsum("bthd,bthdw->bthw", x, theta.cos()),
                              torch.einsum("bthd,bthdw->bthw", x, theta.sin())), dim=-1)
        xg = x[..., None] * self.gains / math.sqrt(self.n_freqs)
        return torch.cat(((xg * theta.cos()).sum(-2), (xg * theta.sin()).sum(-2)), dim=-1)

    def forward(self, q: Tensor, k: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        theta = angles(positions, self.freqs).unflatten(-1, (q.shape[-1], self.n_freqs))
        if self.minimal:
            return self._pool(q, theta), self._pool(k, theta)
        return self._pool(q, theta + self.phase_q), self._pool(k, theta + self.phase_k)


def make_positional_encoding(name: str, head_dim: int, n_heads: int, position_dim: int,
                             n_freqs: int = 1) -> PositionalEncoding:
    """Build the attention-side positional encoding called ``name`` (see PE_NAMES)."""
    if name in ("none", "ape"):
        return PositionalEncoding(head_dim)
    if name in ("rope_a", "rope_b", "rope_c"):
        return RoPE(head_dim, n_heads, position_dim, {"rope_a": "a", "rope_b": "b", "rope_c": "learn"}[name])
    if name == "ropepool":
        return RoPEPool(head_dim, n_heads, position_dim)
    if name == "fstripe1":
        return FStripe(head_dim, n_heads, position_dim, 1, minimal=True)
    if name == "fstripe":
        return FStripe(head_dim, n_heads, position_dim, n_freqs, minimal=False)
    raise ValueError(f"unknown positional encoding {name!r}; choose one of {', '.join(PE_NAMES)}")


class AbsolutePE(nn.Module):
    """``ape``: an encoding of the positions added to the input embedding.

    P = 1: the usual fixed sinusoid (sin on even, cos on odd channels, base 10000).
    P > 1: a learnable linear projection of the position vector (a sinusoid of a 0/1 value carries no
    more than a linear map of it would).
    """

    def __init__(self, d_model: int, position_dim: int):
        super().__init__()
        self.position_dim = position_dim
        if position_dim == 1:
            inv = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float32, device="cpu") / d_model)
            self.register_buffer("inv_freq", inv)
        else:
            self.proj = nn.Linear(position_dim, d_model, bias=False)

    def forward(self, positions: Tensor) -> Tensor:
        if self.position_dim > 1:
            return self.proj(positions.to(self.proj.weight.dtype))
        theta = positions.float() * self.inv_freq  # [B,T,1] * [d/2] -> [B,T,d/2]
        return torch.stack((theta.sin(), theta.cos()), dim=-1).flatten(-2)
