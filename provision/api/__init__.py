"""GlitchTip API access: the HTTP client and the token bootstrap (httpx, imported lazily)."""
