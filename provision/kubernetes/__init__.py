"""Kubernetes: the kit's settings and secrets as input for GlitchTip's official Helm chart.

The kit does not run anything on a cluster. `provision render --target kubernetes` writes
`kubernetes/values.yaml` (values for the chart, no secret in it) and `kubernetes/secrets.yaml`
(a Namespace and a Secret holding the kit's secrets from `.env`, mode 0600), and prints the
`helm`/`kubectl` commands that install or upgrade the release. `chart.py` pins the chart;
`values.py` and `manifests.py` are pure; `render.py` is the edge that writes the files.
"""
