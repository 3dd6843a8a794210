"""Kernelized linear attention: feature maps, chunkwise-parallel / recurrent forms, and references.

Layout is [B, H, T, F] everywhere in this file (time explicit, see engineering.md A.4 on the FLA
normaliser bug). The positional encoding has already been applied: φ acts on the PE-transformed q̂, k̂
(paper.md §1.1), so the normaliser φ(q̂)·Σφ(k̂) is positive.
Feature maps, running sums and denominators are fp32, with autocast disabled locally.
"""

from __future__ import annotations

import functools
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

    def forward(self, x: Tensor, is_query: bool, inplace: bool = False) -> Tensor:
        """φ(x); ``inplace`` lets elu overwrite x (a temporary of the caller's) when autograd is off."""
        x = x.float()
        if self.kind == "elu":
            return elu_plus_one(x, inplace)
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

    S = Σ φ(k) vᵀ is ``kv[..., :M]`` and z = Σ φ(k) is ``kv[..., M]`` (in the one-token step a ones
    column on v makes one matmul give numerator and denominator). Always fp32; its size does not depend
    on the sequence length.
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


def elu_plus_one(x: Tensor, inplace: bool = False) -> Tensor:
    """elu(x) + 1. Without autograd as exp(min(x, 0)) + max(x, 0): the same function, but exp is
    vectorised on CPU where elu is not (2.4x faster here), and the result keeps x's memory layout.
    ``inplace`` (ignored under autograd) overwrites x, saving one large allocation."""
    if torch.is_grad_enabled() and x.requires_grad:
        return F.elu(x) + 1.0
    negative_part = x.clamp(max=0.0).exp_()
    return (x.clamp_(min=0.0) if inplace else x.clamp(min=0.0)).add_(negative_part)


@functools.lru_cache(maxsize=16)
def _strict_prefix(m: int, device: torch.device) -> Tensor:
    """[m, m] strictly lower-triangular ones: L @ X gives the exclusive prefix sums of X's rows.
    A tiny matmul, several times faster than cumsum over a middle dimension on CPU. Cached and read
    only; made outside inference mode so that a later autograd pass may save it for backward."""
    with torch.inference_mode(False):
        return torch.ones(m, m, device=device).tril_(-1)


def _causal_chunks(q: Tensor, k: Tensor, v: Tensor, S: Tensor | None, z: Tensor | None, out: Tensor | None,
                   need_state: bool):
    """Causal chunkwise form for one block: q, k [G,m,C,F], v [G,m,C,M] (G = B·H, m chunks of C steps),
    starting from S [G,F,M], z [G,F] (None: zeros). Returns y [G,m,C,M] (``out`` filled in place when
    given) and, when ``need_state``, S and z after the block (else None, None)."""
    G, m, C, Fd = q.shape
    M = v.shape[-1]
    Q, K, V = q.reshape(G * m, C, Fd), k.reshape(G * m, C, Fd), v.reshape(G * m, C, M)
    kv = torch.bmm(K.transpose(1, 2), V).view(G, m, Fd * M)  # per-chunk Kᵀ V
    ks = k.sum(2)  # per-chunk Σ φ(k): [G, m, F]
    L = _strict_prefix(m, q.device)
    before, z_before = torch.matmul(L, kv), torch.matmul(L, ks)  # the state each chunk starts from
    if S is not None:
        before, z_before = before + S.reshape(G, 1, Fd * M), z_before + z[:, None]
    if need_state:
        S, z = (before[:, -1] + kv[:, -1]).view(G, Fd, M), z_before[:, -1] + ks[:, -1]
    A = torch.bmm(Q, K.transpose(1, 2)).tril_()  # intra-chunk causal scores
    num = torch.bmm(A, V).baddbmm_(Q, before.view(G * m, Fd, M))  # in place: bmm saves inputs, not output
    den = A.sum(-1, keepdim=True).baddbmm_(Q, z_before.view(G * m, Fd, 1)).add_(EPS)
    if out is None:
        out = (num / den).view(G, m, C, M)
    else:
        torch.div(num.view(G, m, C, M), den.view(G, m, C, 1), out=out)
    return (out, S, z) if need_state else (out, None, None)


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

    The numerator and the denominator φ(q)·Σφ(k) are computed apart (the recurrent step instead appends
    a ones column to v): an M+1 = 65-wide matmul runs ~25% slower than a 64-wide one here.
    """
    B, H, T, M = v.shape
    Fd = phi_k.shape[-1]
    with fp32_region(v.device):
        phi_q, phi_k, v = phi_q.float(), phi_k.float(), v.float()
        if key_padding_mask is not None:
            keep = key_padding_mask[:, None, :, None]
            # where, not a product: garbage (inf/nan) in padded steps must not leak (nan·0 = nan)
            phi_k, v = torch.where(keep, phi_k, 0.0), torch.where(keep, v, 0.0)
        S = z = None
        if initial_state is not None:
            S, z = initial_state.S.reshape(B * H, Fd, M), initial_state.z.reshape(B * H, Fd)
        if not causal:
            G = B * H
            if S is None:
                S, z = phi_q.new_zeros(G, Fd, M), phi_q.new_zeros(G, Fd)
            S = torch.baddbmm(S, phi_k.reshape(G, T, Fd).transpose(1, 2), v.reshape(G, T, M))
            z = z + phi_k.sum(2).view(G, Fd)
            Q = phi_q.reshape(G, T, Fd)
            y = (torch.bmm(Q, S) / (torch.bmm(Q, z[..., None]) + EPS)).view(B, H, T, M)
        else:
            C = chunk_size
            pad = (-T) % C
            if pad:
                phi_q, phi_k, v = (F.pad(t, (0, 0, 0, pad)) for t in (phi_q, phi_k, v))
            n = (T + pad) // C
            qc, kc, vc = (t.reshape(B * H, n, C, t.shape[-1]) for t in (phi_q, phi_k, v))
            # without autograd each block writes straight into the output (no list + cat)
            y = None if torch.is_grad_enabled() else qc.new_empty(B * H, n, C, M)
            outs = []
            for s in range(0, n, block_chunks):
                e = min(n, s + block_chunks)
                o, S, z = _causal_chunks(qc[:, s:e], kc[:, s:e], vc[:, s:e], S, z,
                                         None if y is None else y[:, s:e], need_state=e < n or return_state)
                outs.append(o)
            if y is None:
                y = outs[0] if len(outs) == 1 else torch.cat(outs, 1)
            y = y.view(B, H, n * C, M)[:, :, :T]
    if not return_state:
        return y
    return y, LinearState(torch.cat((S, z[..., None]), -1).view(B, H, Fd, M + 1))


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
