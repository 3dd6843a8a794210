"""Bundled pretrained weights, installed as ``harmonize.pretrained`` (see pyproject.toml)."""
