"""glitchtip.yaml for `provision init` (every setting, commented with its help), and the
report `provision config` prints."""

from __future__ import annotations

from typing import Any

from provision.masking import mask_url_password, url_passwords
from provision.settings.base import SOURCE_OPTION
from provision.settings.model import Settings
from provision.settings.specs import SECRET_SETTINGS, SPECS, URL_WITH_PASSWORD

_ALWAYS_WRITTEN = ("glitchtip_major",)


def _yaml_scalar(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def initial_settings_text(settings: Settings) -> str:
    """A commented glitchtip.yaml: the settings given as options (and the major and public URL)
    active, every other setting shown commented out with its default."""
    lines = [
        "# Settings of this GlitchTip deployment (safe to commit: no secrets here).",
        "# Precedence: command-line option > environment variable > this file > default.",
        "# `provision config` shows the effective values; `provision render --check` applies them.",
        "",
    ]
    for spec in SPECS:
        value = settings.value(spec.name)
        lines.append(f"# {spec.help} [{spec.env}]")
        active = spec.name in _ALWAYS_WRITTEN or settings.sources[spec.name] == SOURCE_OPTION
        if spec.name in URL_WITH_PASSWORD and url_passwords(value):
            active = False
            value = mask_url_password(value)
        if spec.name in SECRET_SETTINGS:
            active = False
            value = ""
        if active:
            lines.append(f"{spec.name}: {_yaml_scalar(value)}")
        elif spec.derived:
            lines.append(f"# {spec.name}: {_yaml_scalar(value)}  # derived: {spec.default_text}")
        else:
            lines.append(f"# {spec.name}: {_yaml_scalar(value)}")
        lines.append("")
    return "\n".join(lines)


def write_initial_settings(settings: Settings) -> bool:
    """Write glitchtip.yaml unless it exists; True when it was created."""
    from provision.fileio import write_atomic

    if settings.settings_path.exists():
        return False
    write_atomic(settings.settings_path, initial_settings_text(settings))
    return True


def describe(settings: Settings) -> dict[str, Any]:
    """Every setting with its value, source and variable, plus which secrets are set (masked)."""
    from provision.masking import mask
    from provision.secrets import SECRET_KEYS, URL_SECRET_KEYS, read_secrets

    env = read_secrets(settings.env_path)
    return {
        "directory": str(settings.directory),
        "settings": {
            spec.name: {
                "value": settings.display_value(spec.name),
                "source": settings.sources[spec.name],
                "env": spec.env,
            }
            for spec in SPECS
        },
        "secrets": {key: mask(env.get(key)) for key in SECRET_KEYS if key not in URL_SECRET_KEYS},
        "services": settings.external_services(),
    }
