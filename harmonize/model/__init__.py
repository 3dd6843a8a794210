"""Structure-informed linear-attention transformer (no MIDI code here; see paper.md §1)."""

from .attention import FeatureMap, LinearState, linear_attention, linear_attention_step, softmax_attention
from .checkpoint import load_model, save_model
from .position import PE_NAMES, make_positional_encoding
from .transformer import ModelConfig, StructureTransformer

__all__ = [
    "PE_NAMES",
    "FeatureMap",
    "LinearState",
    "ModelConfig",
    "StructureTransformer",
    "linear_attention",
    "linear_attention_step",
    "load_model",
    "make_positional_encoding",
    "save_model",
    "softmax_attention",
]
