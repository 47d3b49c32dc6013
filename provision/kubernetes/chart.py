"""The Helm chart the kit renders values for, and the Kubernetes version its manifests target.

GlitchTip's chart: gitlab.com/glitchtip/glitchtip-helm-chart (`charts/glitchtip`), published in
the GitLab package registry below. Version 8 reads SECRET_KEY, DATABASE_URL and REDIS_URL from
existing Secrets (`glitchtip.existingSecret`, `glitchtip.database.existingSecret`,
`glitchtip.valkey.existingSecret`) and runs GlitchTip 6's worker (`SERVER_ROLE=worker`, vtasks),
so it is for GlitchTip 6 only. The values the kit writes use only keys of the chart's
values.yaml (tests/fixtures/kubernetes/ holds a copy of them, with its source).
"""

from __future__ import annotations

import re

CHART_REPO_NAME = "glitchtip"
CHART_REPO_URL = "https://gitlab.com/api/v4/projects/16325141/packages/helm/stable"
CHART_NAME = "glitchtip"
CHART_VERSION = "8.1.1"
CHART_APP_VERSION = "6.0.10"
CHART_MAJOR_GLITCHTIP = 6
# The migration job's command in the chart's values (GlitchTip's image script).
MIGRATE_COMMAND = ("bin/run-migrate.sh",)
MIGRATE_DEADLINE_SECONDS = 900

# Manifests the kit writes itself are checked against this Kubernetes version's schemas
# (kubernetes-validate 1.37.0 carries 1.x schemas up to 1.37; 1.34 is the oldest release still
# maintained upstream when this was pinned, so what validates here applies on every newer one).
KUBERNETES_VERSION = "1.34.0"

# A DNS-1123 label: namespace and release names (Helm caps release names at 53 characters).
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
RELEASE_MAX = 53


def is_release_name(name: str) -> bool:
    """True when `name` can be a Helm release and a namespace name."""
    return len(name) <= RELEASE_MAX and _LABEL.fullmatch(name) is not None


def fullname(release: str) -> str:
    """The chart's `glitchtip.fullname`: the release name when it contains the chart's name,
    else `<release>-glitchtip` (cut to 63); its Deployments are `<fullname>-web`/`-worker`."""
    name = release if CHART_NAME in release else f"{release}-{CHART_NAME}"
    return name[:63].rstrip("-")
