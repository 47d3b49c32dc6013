"""The chart's upload environment and Ingress for the shapes the main Kubernetes tests do not
render: a bucket with a region and no endpoint (AWS itself), a bucket without keys (an IAM role
gives them), and a public URL that is an IP address (an Ingress rule needs a DNS name)."""

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
