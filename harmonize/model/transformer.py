"""The structure-informed causal linear-attention transformer, all in one file (nanoGPT style).

x [B,T,n_in] -> Linear (or a 1-D convolution over ``local_kernel`` steps) -> (+ absolute PE) -> n_layers
pre-LN blocks (each optionally with a depthwise convolution over ``block_kernel`` steps) -> LayerNorm -> Linear -> logits.
Each block's attention projects q, k, v, applies the attention-side positional encoding (position.py)
to q and k, then φ and the chunkwise linear attention (attention.py). Weights are shared between the
parallel pass (training, scoring, prefill) and the recurrent ``step`` (token-by-token decoding).

Pre-LN rather than the post-LN of the 2024 StrIPE code: it trains stably without a long warm-up or
tiny gradient clipping, and the residual stream stays an identity path; the paper's results do not
depend on this choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .attention import (
    FeatureMap,
    LinearState,
    fp32_region,
    linear_attention,
    linear_attention_step,
    softmax_attention,
)
from .position import PE_NAMES, AbsolutePE, make_positional_encoding

ROTARY = ("rope_a", "rope_b", "rope_c", "ropepool")


@dataclass
class ModelConfig:
    n_in: int = 256  # input features per step (melody + bridge piano rolls)
    n_out: int = 128  # logits per step
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 512
    dropout: float = 0.1
    pe: str = "ropepool"  # none|ape|rope_a|rope_b|rope_c|fstripe1|fstripe|ropepool
    position_dim: int = 12  # 1 for scalar contexts (time/rep/key), 12 for bin
    n_freqs: int = 1  # F-StrIPE N_f (``fstripe`` only)
    feature_map: str = "elu"  # elu|favor: elu is ~2x faster and deterministic (docs/attention.md)
    n_features: int = 64  # FAVOR+ random features
    attention: str = "linear"  # linear|softmax (softmax = exact O(T²) reference)
    causal: bool = True
    chunk_size: int = 64
    # > 1: the input projection is a convolution over this many neighbouring steps (odd; non-causal only).
    # Linear attention blurs position: it is weak at the sharp local focus that melody-to-chord needs
    # (the notes of the beats around a chord say most about it), so a local window is added at the input.
    local_kernel: int = 1
    # > 1: each block also mixes this many neighbouring steps with a depthwise convolution after its attention
    # (Conformer-style; odd, non-causal only). Stacked, the blocks then see far more neighbours than the input
    # window alone, still without the blur of linear attention.
    block_kernel: int = 1

    def __post_init__(self):
        problems = []
        if self.pe not in PE_NAMES:
            problems.append(f"pe must be one of {', '.join(PE_NAMES)}, got {self.pe!r}")
        if self.feature_map not in ("elu", "favor"):
            problems.append(f"feature_map must be elu or favor, got {self.feature_map!r}")
        if self.attention not in ("linear", "softmax"):
            problems.append(f"attention must be linear or softmax, got {self.attention!r}")
        if self.d_model % self.n_heads:
            problems.append(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        elif self.pe in ROTARY and (self.d_model // self.n_heads) % 2:
            problems.append(f"{self.pe} needs an even head dim, got {self.d_model // self.n_heads}")
        if self.pe == "ape" and self.d_model % 2:
            problems.append("ape needs an even d_model")
        for name in ("local_kernel", "block_kernel"):
            kernel = getattr(self, name)
            if kernel < 1 or kernel % 2 == 0:
                problems.append(f"{name} must be an odd number >= 1, got {kernel}")
            elif kernel > 1 and self.causal:
                problems.append(f"{name} > 1 needs causal=False (a step would see the steps after it)")
        for name in ("n_in", "n_out", "d_model", "n_heads", "n_layers", "d_ff", "position_dim", "n_freqs",
                     "n_features", "chunk_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if problems:
            raise ValueError("; ".join(problems))


class SelfAttention(nn.Module):
    """Multi-head self-attention with an attention-side PE and linear (or exact softmax) attention."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.n_heads, self.head_dim = cfg.n_heads, cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.pe = make_positional_encoding(cfg.pe, self.head_dim, cfg.n_heads, cfg.position_dim, cfg.n_freqs)
        self.feature_map = FeatureMap(cfg.feature_map, self.pe.out_dim, cfg.n_features)

    def _project(self, x: Tensor, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x [B,T,d] -> q̂, k̂ [B,T,H,D'] (fp32, PE applied) and v [B,T,H,D]."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.n_heads, self.head_dim)).unbind(-3)
        return *self.encode(q, k, positions), v

    def encode(self, q: Tensor, k: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Apply the positional encoding in fp32 (angles of long positions need it)."""
        with fp32_region(q.device):
            return self.pe(q.float(), k.float(), positions)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, return_state: bool = False):
        """q̂, k̂ [B,T,H,D'] from ``encode``, v [B,T,H,D] -> [B,T,H,D] (and the final state when
        ``return_state``). Without autograd, q̂ and k̂ are overwritten when the PE made them."""
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B,H,T,·]
        if self.cfg.attention == "softmax":
            return softmax_attention(q, k, v, self.cfg.causal, mask).transpose(1, 2)
        own = self.pe.returns_new_tensors
        with fp32_region(q.device):
            phi_q, phi_k = self.feature_map(q, True, inplace=own), self.feature_map(k, False, inplace=own)
        y = linear_attention(phi_q, phi_k, v, self.cfg.causal, self.cfg.chunk_size, mask,
                             return_state=return_state)
        return (y[0].transpose(1, 2), y[1]) if return_state else y.transpose(1, 2)

    def forward(self, x: Tensor, positions: Tensor, mask: Tensor | None = None, return_state: bool = False):
        y = self.attend(*self._project(x, positions), mask, return_state)
        y, state = y if return_state else (y, None)
        y = self.proj(y.flatten(-2).to(x.dtype))
        return (y, state) if return_state else y

    def step(self, x: Tensor, positions: Tensor, state: LinearState) -> tuple[Tensor, LinearState]:
        """x [B,1,d], positions [B,1,P] -> [B,1,d] and the updated state."""
        q, k, v = self._project(x, positions)
        with fp32_region(x.device):
            phi_q, phi_k = self.feature_map(q[:, 0], is_query=True), self.feature_map(k[:, 0], is_query=False)
        y, state = linear_attention_step(phi_q, phi_k, v[:, 0], state)
        return self.proj(y.reshape(x.shape).to(x.dtype)), state


def zero_padding(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x`` [B,T,C] with its padding steps (``mask`` False) zeroed, so that a convolution over the steps cannot
    carry them into the real steps beside them."""
    return x if mask is None else x * mask[..., None].to(x.dtype)


class LocalConv(nn.Module):
    """x + pointwise(GELU(depthwise_conv(LN(x)))) over ``block_kernel`` neighbouring steps (padding zeroed)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        k = cfg.block_kernel
        self.ln = nn.LayerNorm(cfg.d_model)
        self.depthwise = nn.Conv1d(cfg.d_model, cfg.d_model, k, padding=k // 2, groups=cfg.d_model)
        self.pointwise = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        h = zero_padding(self.ln(x), mask)
        h = torch.nn.functional.gelu(self.depthwise(h.transpose(1, 2)).transpose(1, 2))
        return x + self.drop(self.pointwise(h))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then (``block_kernel`` > 1) the local convolution, then
    x + MLP(LN(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.conv = LocalConv(cfg) if cfg.block_kernel > 1 else None
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model),
                                 nn.Dropout(cfg.dropout))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, positions: Tensor, mask: Tensor | None, return_state: bool = False):
        a = self.attn(self.ln1(x), positions, mask, return_state)
        a, state = a if return_state else (a, None)
        x = x + self.drop(a)
        if self.conv is not None:
            x = self.conv(x, mask)
        x = x + self.mlp(self.ln2(x))
        return (x, state) if return_state else x

    def step(self, x: Tensor, positions: Tensor, state: LinearState) -> tuple[Tensor, LinearState]:
        a, state = self.attn.step(self.ln1(x), positions, state)
        x = x + self.drop(a)
        return x + self.mlp(self.ln2(x)), state


class StructureTransformer(nn.Module):
    """Per-step logits from per-step input features and structural positions."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        k = config.local_kernel
        self.inp = (nn.Linear(config.n_in, config.d_model) if k == 1
                    else nn.Conv1d(config.n_in, config.d_model, k, padding=k // 2))
        self.ape = AbsolutePE(config.d_model, config.position_dim) if config.pe == "ape" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.n_out)

    def _check(self, x: Tensor, positions: Tensor) -> None:
        c = self.config
        if x.shape[-1] != c.n_in or positions.shape[-1] != c.position_dim or x.shape[:-1] != positions.shape[:-1]:
            raise ValueError(f"expected x [..., {c.n_in}] and positions [..., {c.position_dim}] with the same "
                             f"leading dims, got {tuple(x.shape)} and {tuple(positions.shape)}")

    def _embed(self, x: Tensor, positions: Tensor, mask: Tensor | None = None) -> Tensor:
        if isinstance(self.inp, nn.Conv1d):
            h = self.inp(zero_padding(x, mask).transpose(1, 2)).transpose(1, 2)
        else:
            h = self.inp(x)
        if self.ape is not None:
            h = h + self.ape(positions).to(h.dtype)
        return self.drop(h)

    def forward(self, x: Tensor, positions: Tensor, mask: Tensor | None = None) -> Tensor:
        """x [B,T,n_in], positions [B,T,position_dim], mask [B,T] (True = real step) -> [B,T,n_out]."""
        self._check(x, positions)
        h = self._embed(x, positions, mask)
        for block in self.blocks:
            h = block(h, positions, mask)
        return self.head(self.ln_f(h))

    def prefill(self, x: Tensor, positions: Tensor, mask: Tensor | None = None) -> tuple[Tensor, list]:
        """Parallel pass that also returns the recurrent state after the last step (causal linear only)."""
        self._require_recurrent()
        self._check(x, positions)
        h = self._embed(x, positions, mask)
        states = []
        for block in self.blocks:
            h, s = block(h, positions, mask, return_state=True)
            states.append(s)
        return self.head(self.ln_f(h)), states

    def _require_recurrent(self) -> None:
        if self.config.attention != "linear" or not self.config.causal:
            raise ValueError("recurrent decoding needs attention='linear' and causal=True")

    def init_state(self, batch_size: int, device=None) -> list[LinearState]:
        """Empty recurrent state, one LinearState per layer (fp32, size independent of length)."""
        self._require_recurrent()
        device = device if device is not None else self.head.weight.device
        H, M = self.config.n_heads, self.config.d_model // self.config.n_heads
        return [LinearState.zeros(batch_size, H, b.attn.feature_map.out_dim, M, device) for b in self.blocks]

    def step(self, x_t: Tensor, pos_t: Tensor, state: list) -> tuple[Tensor, list]:
        """One decoding step: x_t [B,n_in], pos_t [B,position_dim] -> logits [B,n_out], new state.

        Under no_grad/inference_mode the state tensors are updated in place.
        """
        self._check(x_t, pos_t)
        h, pos = self._embed(x_t[:, None], pos_t[:, None]), pos_t[:, None]
        new_state = []
        for block, s in zip(self.blocks, state, strict=True):
            h, s = block.step(h, pos, s)
            new_state.append(s)
        return self.head(self.ln_f(h))[:, 0], new_state

    @torch.no_grad()
    def redraw_features(self, generator: torch.Generator | None = None) -> None:
        """Redraw FAVOR+ projections (the trainer calls this each training step; no-op for elu)."""
        for block in self.blocks:
            block.attn.feature_map.redraw(generator)
