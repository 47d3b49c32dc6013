"""The GlitchTip kit: render, deploy and provision a self-hosted GlitchTip."""

import sys

__version__ = "0.1.0"

# httpx imports its command-line client (click, rich, pygments: about 100 ms, half of httpx's
# import) whenever rich is installed, as mutmut's dependencies install it; the kit never runs
# that client. A None entry makes httpx's guarded `from ._main import main` take its fallback.
# Here, not in the API client, because several modules import httpx before the client.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
