"""GlitchTip's (Django's) slug of a name: a leaf module, so that the settings (which refuse a
name with no slug) and the provisioning (which looks objects up by slug) share one rule without
the settings importing the API side."""

from __future__ import annotations

import re
import unicodedata


def slugify(value: str) -> str:
    """GlitchTip's (Django's) slug of a name."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value.lower())
    return re.sub(r"[-\s]+", "-", value).strip("-_")
