"""Kernelized linear attention: feature maps, chunkwise-parallel / recurrent forms, and references.

Layout is [B, H, T, F] everywhere in this file (time explicit, see engineering.md A.4 on the FLA
normaliser bug). The positional encoding has already been applied: φ acts on the PE-transformed q̂, k̂
(paper.md §1.1), so the normaliser φ(q̂)·Σφ(k̂) is positive and the "ones column" trick gives it for free.
Feature maps, running sums and denominators are fp32, with autocast disabled locally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-6
FAVOR_MAX_EXPONENT = 40.0  # exp(40)·16384 keys stays far below the fp32 range


def fp32_region(device: torch.device):
    """A context where autocast is off, so sums and divisions stay in fp32."""
    return torch.autocast(device_type=device.type, enabled=False)


def orthogonal_gaussian(n_features: int, dim: int, generator: torch.Generator | None = None) -> Tensor:
    """[n_features, dim] blocks of orthonormal rows, rescaled by Gaussian norms (FAVOR+ projection)."""
    n_blocks = math.ceil(n_features / dim)
    q, r = torch.linalg.qr(torch.randn(n_blocks, dim, dim, generator=generator))  # one batched call
    # sign fix makes q Haar-distributed; without it LAPACK's sign convention biases the rows
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    w = q.transpose(-1, -2).reshape(n_blocks * dim, dim)[:n_features]
    norms = torch.randn(n_features, dim, generator=generator).norm(dim=1, keepdim=True)
    return w * norms


class FeatureMap(nn.Module):
    """φ: R^{in_dim} -> R^{out_dim}_+, either ``elu`` (elu+1) or ``favor`` (FAVOR+ positive features).

    FAVOR+: φ(x) = exp(Wx' − ‖x'‖²/2 − s)/√m with x' = x·d^(-1/4), so E[φ(q)·φ(k)] ∝ exp(q·k/√d).
    The stabiliser s is per token: for a query the max over its own features (cancels in the ratio);
    for a key s = 0 and the exponent is clamped at FAVOR_MAX_EXPONENT (never a max over the sequence,
    which would leak future tokens and break step-by-step decoding). The projection W is a persistent
    buffer: fixed at eval, redrawn by ``redraw()`` when the trainer asks.
    """

    def __init__(self, kind: str, in_dim: int, n_features: int = 64):
        super().__init__()
        if kind not in ("elu", "favor"):
            raise ValueError(f"unknown feature map {kind!r}; choose elu or favor")
        self.kind, self.in_dim = kind, in_dim
        self.out_dim = in_dim if kind == "elu" else n_features
        if kind == "favor":
            self.register_buffer("projection", orthogonal_gaussian(n_features, in_dim))

    @torch.no_grad()
    def redraw(self, generator: torch.Generator | None = None) -> None:
        """Draw a new random projection in place (no-op for elu)."""
        if self.kind == "favor":
            w = orthogonal_gaussian(self.out_dim, self.in_dim, generator)
            self.projection.copy_(w.to(self.projection.device))

    def forward(self, x: Tensor, is_query: bool) -> Tensor:
        x = x.float()
        if self.kind == "elu":
            return F.elu(x) + 1.0
        x = x * self.in_dim ** -0.25
        u = x @ self.projection.T - 0.5 * (x * x).sum(-1, keepdim=True)
        if is_query:
            u = u - u.amax(-1, keepdim=True).detach()
        else:
            u = u.clamp(max=FAVOR_MAX_EXPONENT)
        return torch.exp(u) * self.out_dim ** -0.5


@dataclass
class LinearState:
    """Recurrent state of one attention layer: kv = [S | z], shape [B, H, Dφ, M+1].

    S = Σ φ(k) vᵀ is ``kv[..., :M]`` and z = Σ φ(k) is ``kv[..., M]`` (ones-column trick: one matmul
    gives numerator and denominator). Always fp32; its size does not depend on the sequence length.
    """

    kv: Tensor

    @property
    def S(self) -> Tensor:  # noqa: N802 - the paper's name
        return self.kv[..., :-1]

    @property
    def z(self) -> Tensor:
        return self.kv[..., -1]

    @staticmethod
    def zeros(batch: int, heads: int, feat_dim: int, value_dim: int, device=None) -> LinearState:
        return LinearState(torch.zeros(batch, heads, feat_dim, value_dim + 1, device=device))


def _with_ones(v: Tensor) -> Tensor:
    return torch.cat((v, v.new_ones(*v.shape[:-1], 1)), dim=-1)


def _chunk_block(qc: Tensor, kc: Tensor, vc: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
    """Causal chunkwise form on [B,H,n,C,·] chunks, starting from ``state`` [B,H,F,M1] (or zeros)."""
    kv = kc.transpose(-1, -2) @ vc  # per-chunk Kᵀ[V|1]: [B,H,n,F,M1]
    total = kv.cumsum(2)
    before = total - kv  # exclusive prefix: the state each chunk starts from
    if state is not None:
        before = before + state[:, :, None]
        total = total + state[:, :, None]
    out = qc @ before
    out += (qc @ kc.transpose(-1, -2)).tril_() @ vc  # intra-chunk causal part
    return out, total[:, :, -1]


def linear_attention(phi_q: Tensor, phi_k: Tensor, v: Tensor, causal: bool = True, chunk_size: int = 64,
                     key_padding_mask: Tensor | None = None, initial_state: LinearState | None = None,
                     return_state: bool = False, block_chunks: int = 16):
    """Normalised linear attention on feature-mapped inputs.

    Args:
        phi_q, phi_k: φ(q̂), φ(k̂), [B, H, T, F], non-negative.
        v: values [B, H, T, M].
        causal: chunkwise-parallel causal form; otherwise the global (bidirectional) form.
        chunk_size: C of the chunkwise form; T is zero-padded to a multiple of it.
        key_padding_mask: [B, T] bool, True = real step. Masked keys get φ(k) = 0 (after φ, since
            elu+1 and FAVOR are never 0), so they add nothing to any sum.
        initial_state: state to continue from (causal only), e.g. from a previous call.
        return_state: also return the final LinearState (prefill for step-by-step decoding).
        block_chunks: chunks processed at once; a longer input loops over blocks carrying the state,
            which keeps memory O(block) instead of O(T) for the per-chunk states.

    Returns:
        [B, H, T, M] fp32 (and the final state when ``return_state``).
    """
    B, H, T, M = v.shape
    with fp32_region(v.device):
        phi_q, phi_k, v1 = phi_q.float(), phi_k.float(), _with_ones(v.float())
        if key_padding_mask is not None:
            keep = key_padding_mask[:, None, :, None]
            # where, not a product: garbage (inf/nan) in padded steps must not leak (nan·0 = nan)
            phi_k, v1 = torch.where(keep, phi_k, 0.0), torch.where(keep, v1, 0.0)
        if not causal:
            kv = phi_k.transpose(-1, -2) @ v1
            if initial_state is not None:
                kv = kv + initial_state.kv
            out = phi_q @ kv
            state = kv
        else:
            C = chunk_size
            pad = (-T) % C
            if pad:
                phi_q, phi_k, v1 = (F.pad(t, (0, 0, 0, pad)) for t in (phi_q, phi_k, v1))
            n = (T + pad) // C
            qc, kc, vc = (t.reshape(B, H, n, C, t.shape[-1]) for t in (phi_q, phi_k, v1))
            state = None if initial_state is None else initial_state.kv
            outs = []
            for s in range(0, n, block_chunks):
                o, state = _chunk_block(qc[:, :, s:s + block_chunks], kc[:, :, s:s + block_chunks],
                                        vc[:, :, s:s + block_chunks], state)
                outs.append(o)
            out = (outs[0] if len(outs) == 1 else torch.cat(outs, 2)).view(B, H, n * C, M + 1)[:, :, :T]
        y = out[..., :M] / (out[..., M:] + EPS)
    return (y, LinearState(state.contiguous())) if return_state else y


def linear_attention_step(phi_q: Tensor, phi_k: Tensor, v: Tensor, state: LinearState
                          ) -> tuple[Tensor, LinearState]:
    """One recurrent step: [B,H,F], [B,H,F], [B,H,M] -> output [B,H,M] and the updated state.

    Without autograd the state is updated in place (no allocation per token).
    """
    with fp32_region(v.device):
        phi_q, phi_k, v1 = phi_q.float(), phi_k.float(), _with_ones(v.float())
        if torch.is_grad_enabled():
            kv = state.kv + phi_k[..., :, None] * v1[..., None, :]
        else:
            kv = state.kv
            kv.view(-1, *kv.shape[-2:]).baddbmm_(phi_k.reshape(-1, phi_k.shape[-1], 1),
                                                 v1.reshape(-1, 1, v1.shape[-1]))
        out = (phi_q[..., None, :] @ kv)[..., 0, :]
        y = out[..., :-1] / (out[..., -1:] + EPS)
    return y, LinearState(kv)


def _score_mask(T: int, S: int, causal: bool, key_padding_mask: Tensor | None, device) -> Tensor | None:
    """[B or 1, 1, T, S] bool, True = may attend."""
    mask = None
    if causal:
        mask = torch.ones(T, S, dtype=torch.bool, device=device).tril()[None, None]
    if key_padding_mask is not None:
        kp = key_padding_mask[:, None, None, :]
        mask = kp if mask is None else mask & kp
    return mask


def quadratic_attention(phi_q: Tensor, phi_k: Tensor, v: Tensor, causal: bool = True,
                        key_padding_mask: Tensor | None = None) -> Tensor:
    """Reference: masked (φQ φKᵀ) V / rowsum, O(T²) memory. Same maths as ``linear_attention``."""
    with fp32_region(v.device):
        a = phi_q.float() @ phi_k.float().transpose(-1, -2)
        mask = _score_mask(a.shape[-2], a.shape[-1], causal, key_padding_mask, a.device)
        if mask is not None:
            a = a.masked_fill(~mask, 0.0)
        return (a @ v.float()) / (a.sum(-1, keepdim=True) + EPS)


def softmax_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = True,
                      key_padding_mask: Tensor | None = None) -> Tensor:
    """Exact softmax attention on the PE-transformed q̂, k̂ with 1/√D' scaling ([B,H,T,D'] layout).

    Rows with no visible key (fully padded) return 0 instead of NaN.
    """
    if key_padding_mask is None:
        return F.scaled_dot_product_attention(q, k, v.to(q.dtype), is_causal=causal)
    mask = _score_mask(q.shape[-2], k.shape[-2], causal, key_padding_mask, q.device)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1).nan_to_num(0.0) @ v.to(q.dtype)
