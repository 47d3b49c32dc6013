"""`Deployment.project`: the Compose of another project in the deployment's directory (the
load test's Locust) runs the deployment's own Compose command and masks its secrets, like
`Deployment.compose`."""

from __future__ import annotations

from provision.deployment import Deployment
from provision.masking import MASK
from provision.settings import load_settings


def test_another_project_runs_the_deployments_compose_command_and_masks_its_secrets(tmp_path):
    secret = "Vq3Lw8Zr1Xc5Nb7Mk2Pj"
    (tmp_path / ".env").write_text(f"SECRET_KEY={secret}\n")
    (tmp_path / ".env").chmod(0o600)
    dep = Deployment(load_settings(tmp_path, {}, environ={}), ("fake-compose", "--verbose"))
    locust = dep.project("glitchtip-locust", ("compose.locust.yml",))
    assert locust.argv("ps") == [
        "fake-compose",
        "--verbose",
        "-f",
        "compose.locust.yml",
        "--project-name",
        "glitchtip-locust",
        "ps",
    ]
    assert locust.redact(f"web-1 | key={secret}") == f"web-1 | key={MASK}"
