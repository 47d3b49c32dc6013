"""The stand-in GlitchTip: the kit's fake GlitchTip on Postgres and Valkey, in a test image."""
