"""The GlitchTip kit: render, deploy and provision a self-hosted GlitchTip."""

__version__ = "0.1.0"
