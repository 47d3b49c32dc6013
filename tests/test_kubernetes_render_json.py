"""`provision render --target kubernetes --json`: the report a script reads, compared whole
(every key, the chart and the Kubernetes version it was validated for, the commands and notes
in order), on the first render and on a second that changes nothing."""

from __future__ import annotations

import json

from cli_run import run

from provision.kubernetes import chart

DOMAIN = "https://glitchtip.example.com"


def test_the_kubernetes_render_report_is_read_whole(tmp_path):
    first = run(tmp_path, "render", "--target", "kubernetes", "--domain", DOMAIN, "--json")
    assert first.exit_code == 0, first.output
    again = run(tmp_path, "render", "--json")
    assert again.exit_code == 0, again.output
    files = (".env", "kubernetes/values.yaml", "kubernetes/secrets.yaml")
    common = {
        "chart": f"glitchtip {chart.CHART_VERSION}",
        "kubernetes_version": chart.KUBERNETES_VERSION,
        "commands": [
            f"helm repo add glitchtip {chart.CHART_REPO_URL}",
            "helm repo update glitchtip",
            f"kubectl apply --server-side -f {tmp_path}/kubernetes/secrets.yaml",
            f"helm upgrade --install glitchtip glitchtip/glitchtip --version {chart.CHART_VERSION} "
            f"--namespace glitchtip -f {tmp_path}/kubernetes/values.yaml --timeout 15m",
            "kubectl -n glitchtip rollout status deploy/glitchtip-web",
        ],
        "notes": [
            "Postgres: the chart's CloudNativePG cluster (the CloudNativePG operator must be "
            "installed); set database_url to use a managed database instead",
            "Valkey: the chart's own (valkey.io chart); set valkey_url for an external one",
            "Ingress: glitchtip.example.com with TLS from the Secret glitchtip-tls (cert-manager "
            "or your own); your own values (ingress class, annotations, node selectors) go in a "
            "file of yours after the kit's: -f kubernetes/values.yaml -f values.local.yaml",
            "admin: kubectl -n glitchtip exec -it deploy/glitchtip-web -- ./manage.py "
            "createsuperuser --email admin@example.com (type DJANGO_SUPERUSER_PASSWORD from .env)",
            f"then: provision create-project --url {DOMAIN}; provision verify --skip services "
            f"--skip disk (verify uses {DOMAIN})",
        ],
    }
    assert json.loads(first.stdout) == {"files": dict.fromkeys(files, "written"), **common}
    assert json.loads(again.stdout) == {"files": dict.fromkeys(files, "unchanged"), **common}
