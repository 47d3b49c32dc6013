"""The two files `provision render --target kubernetes` writes, read as text: secrets.yaml whole
(the Namespace and the Secret in apply order, each object's keys in the order Kubernetes shows
them: apiVersion, kind, metadata, then the rest), and values.yaml's header (the chart, the
GlitchTip version that chart runs and the Secret the values name). Both are files an operator
reads and commits (values.yaml) or applies (secrets.yaml); a second render compares them byte
for byte to say "unchanged", so their exact text is the kit's output, not a detail."""

from __future__ import annotations

import base64

from cli_run import run

from provision.envfile import read_env_file
from provision.kubernetes import chart


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_secrets_yaml_is_the_namespace_then_the_secret_keys_in_the_order_written(tmp_path):
    result = run(tmp_path, "render", "--target", "kubernetes", "--domain", "https://gt.example")
    assert result.exit_code == 0, result.output
    secret_key = read_env_file(tmp_path / ".env")["SECRET_KEY"]
    assert (tmp_path / "kubernetes" / "secrets.yaml").read_text() == (
        "# The GlitchTip kit's secrets for Kubernetes, from .env (mode 0600). NEVER commit this "
        "file.\n"
        "# Apply: kubectl apply --server-side -f kubernetes/secrets.yaml\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Namespace\n"
        "metadata:\n"
        "  name: glitchtip\n"
        "  labels:\n"
        "    app.kubernetes.io/managed-by: glitchtip-kit\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Secret\n"
        "metadata:\n"
        "  name: glitchtip-kit-secrets\n"
        "  namespace: glitchtip\n"
        "  labels:\n"
        "    app.kubernetes.io/managed-by: glitchtip-kit\n"
        "type: Opaque\n"
        "data:\n"
        f"  SECRET_KEY: {_b64(secret_key)}\n"
        f"  EMAIL_URL: {_b64('consolemail://')}\n"
    )


def test_values_yaml_names_the_chart_its_glitchtip_version_and_the_secret_in_its_header(tmp_path):
    result = run(tmp_path, "render", "--target", "kubernetes", "--domain", "https://gt.example")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "kubernetes" / "values.yaml").read_text()
    assert text.splitlines()[:4] == [
        f"# Values for GlitchTip's Helm chart glitchtip {chart.CHART_VERSION} (GlitchTip "
        f"{chart.CHART_APP_VERSION}), written by the",
        "# GlitchTip kit from glitchtip.yaml: `provision render --target kubernetes` rewrites it.",
        "# No secret is in this file: they are in the Secret glitchtip-kit-secrets "
        "(kubernetes/secrets.yaml).",
        "image:",
    ]
    assert chart.CHART_APP_VERSION.startswith("6.")  # the chart runs GlitchTip 6
