"""The metrics stack: what a deployment's `monitoring/` directory holds and how it is made.

`files.py` builds the files `provision render` writes under `monitoring/` (Prometheus's
configuration and rules, Grafana's provisioning and dashboards, the project exporter and its
configuration) from `templates/monitoring/` and the settings; `targets.py` reads Prometheus's
target health for `provision status`. The rules and dashboards themselves are static files under
`templates/monitoring/` (dashboards generated at development time by `dashboards.py`); the
project exporter (`project_exporter.py`) is one self-contained file that runs inside GlitchTip's
image, next to GlitchTip, with the stdlib and prometheus_client only.
"""
