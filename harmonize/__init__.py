"""stripe: structure-informed linear-attention melody harmonization (import package ``harmonize``)."""

__version__ = "0.1.0"
