"""The chart's upload environment and Ingress for the shapes the main Kubernetes tests do not
render: a bucket with a region and no endpoint (AWS itself), a bucket without keys (an IAM role
gives them), a public URL that is an IP address (an Ingress rule needs a DNS name), and the
refusals of `render --check` whole."""

from __future__ import annotations

from pathlib import Path

from provision.kubernetes.manifests import secret_data
from provision.kubernetes.values import chart_values, upload_environment, wants_ingress
from provision.settings import load_settings


def settings_for(tmp_path: Path, **values: str):
    return load_settings(tmp_path, {"target": "kubernetes", **values}, environ={})


def test_a_bucket_on_aws_with_a_region_and_keys_is_whole(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        uploads_bucket="gt-uploads",
        uploads_region="eu-west-3",
        uploads_access_key_id="AKIAEXAMPLEKEY123456",
        uploads_secret_access_key="s3-Secret-789-abcdefghijklmnopqrstuv",
    )
    assert upload_environment(settings) == [
        {"name": "DEFAULT_FILE_STORAGE", "value": "storages.backends.s3boto3.S3Boto3Storage"},
        {"name": "AWS_STORAGE_BUCKET_NAME", "value": "gt-uploads"},
        {"name": "AWS_DEFAULT_REGION", "value": "eu-west-3"},
    ] + [
        {"name": key,
         "valueFrom": {"secretKeyRef": {"name": "glitchtip-kit-secrets", "key": key}}}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    ]  # fmt: skip


def test_a_bucket_without_keys_takes_them_from_the_pods_role(tmp_path: Path) -> None:
    """No key in the environment and none in the Secret: boto3 finds the role's own."""
    settings = settings_for(
        tmp_path, uploads_bucket="gt-uploads", uploads_endpoint_url="https://s3.example.com"
    )
    assert upload_environment(settings) == [
        {"name": "DEFAULT_FILE_STORAGE", "value": "storages.backends.s3boto3.S3Boto3Storage"},
        {"name": "AWS_STORAGE_BUCKET_NAME", "value": "gt-uploads"},
        {"name": "AWS_S3_ENDPOINT_URL", "value": "https://s3.example.com"},
    ]
    assert sorted(secret_data(settings, {"SECRET_KEY": "k" * 50})) == ["EMAIL_URL", "SECRET_KEY"]
    assert upload_environment(settings_for(tmp_path / "none")) == []


def test_only_a_dns_name_gets_an_ingress(tmp_path: Path) -> None:
    for domain, ingress in [
        ("https://10.0.0.5", False),
        ("https://[2001:db8::5]:8443", False),
        ("http://localhost:8000", False),
        ("https://gt.example.com", True),
        ("https://gt", True),
    ]:
        settings = settings_for(tmp_path, glitchtip_domain=domain)
        assert (wants_ingress(settings), "ingress" in chart_values(settings)["web"]) == (
            ingress,
            ingress,
        ), domain


def test_an_invalid_object_is_named_whole_and_a_missing_validator_is_one_line(monkeypatch):
    """`render --check`: the object, the field (or the object itself, for a field it must not
    have) and the Kubernetes version, never a value; without kubernetes-validate, the fix."""
    import sys

    import pytest

    from provision.errors import KitError, UsageError
    from provision.kubernetes.render import validate_manifests

    extra = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gt"}, "bogus": 1}
    wrong = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"K": 1}}
    validate_manifests([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gt"}}])
    for item, message in [
        (extra, "Namespace gt: (the object) is not valid for Kubernetes 1.34.0"),
        (wrong, "Secret s: data/K is not valid for Kubernetes 1.34.0"),
    ]:
        with pytest.raises(UsageError) as refused:
            validate_manifests([item])
        assert (refused.value.message, refused.value.fix) == (
            message,
            "report this as a bug of the kit",
        )
    monkeypatch.setitem(sys.modules, "kubernetes_validate", None)  # import fails
    with pytest.raises(KitError) as missing:
        validate_manifests([extra])
    assert (missing.value.message, missing.value.fix) == (
        "render --check for Kubernetes needs kubernetes-validate",
        "install the kit's dev extra: pip install -e '.[dev]'",
    )
