"""Declarative GlitchTip: `provision plan`, `apply` and `export` (docs/declarative.md)."""
