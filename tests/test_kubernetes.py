"""`provision render --target kubernetes`: values for GlitchTip's Helm chart and the kit's Secret.

No cluster runs here. What is checked instead: every key the kit renders is a key of the chart's
values.yaml (a copy in tests/fixtures/kubernetes/, source recorded there); the Namespace and
Secret the kit writes, and the Kubernetes objects the chart builds from the kit's env lists and
resources, validate against the pinned Kubernetes version's schemas (kubernetes-validate, strict);
secrets stay in secrets.yaml (0600) and never reach values.yaml or the output.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cli_run import one_line_error, run

from provision.envfile import read_env_file
from provision.kubernetes import chart
from provision.kubernetes.values import chart_values
from provision.settings import load_settings

FIXTURE = Path(__file__).parent / "fixtures" / "kubernetes" / "glitchtip-chart-8.1.1-values.yaml"
DOMAIN = "https://glitchtip.example.com"


def chart_defaults() -> dict[str, Any]:
    return yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))


def unknown_keys(rendered: Any, documented: Any, path: str = "") -> list[str]:
    """Paths in `rendered` the chart's values.yaml does not have. A `{}` or a list of scalars in
    the chart is free-form; a list of mappings (ingress hosts) is checked item by item against
    its example item; a scalar given a mapping is unknown below it."""
    if isinstance(documented, dict) and documented:
        if not isinstance(rendered, dict):
            return []
        found = []
        for key, value in rendered.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in documented:
                found.append(where)
            else:
                found += unknown_keys(value, documented[key], where)
        return found
    if isinstance(documented, list) and documented and isinstance(documented[0], dict):
        return [
            bad
            for index, item in enumerate(rendered if isinstance(rendered, list) else [])
            for bad in unknown_keys(item, documented[0], f"{path}[{index}]")
        ]
    if documented is None or not isinstance(documented, (dict, list)):
        return [f"{path}.{key}" for key in rendered] if isinstance(rendered, dict) else []
    return []


def deployment(name: str, env: list, resources: dict, image: str) -> dict[str, Any]:
    """The shape the chart's templates give web and worker, holding the kit's env and resources."""
    labels = {"app.kubernetes.io/name": "glitchtip", "app.kubernetes.io/component": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"glitchtip-{name}"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "glitchtip", "image": image, "env": env, "resources": resources}
                    ]
                },
            },
        },
    }


def settings_for(tmp_path: Path, **overrides: object):
    return load_settings(tmp_path, {"target": "kubernetes", **overrides}, environ={})


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"glitchtip_domain": DOMAIN, "web_replicas": "3", "worker_replicas": "2"},
        {"glitchtip_domain": "http://glitchtip.internal.example", "enable_user_registration": "1"},
    ],
)
def test_every_rendered_key_is_a_key_of_the_charts_values(tmp_path, overrides):
    values = chart_values(settings_for(tmp_path, **overrides))
    assert unknown_keys(values, chart_defaults()) == []


def test_the_key_check_refuses_what_the_chart_does_not_know(tmp_path):
    values = chart_values(settings_for(tmp_path, glitchtip_domain=DOMAIN))
    values["web"]["replicas"] = 2  # the chart's key is replicaCount
    values["web"]["ingress"]["hosts"][0]["hostname"] = "x"
    values["glitchtip"]["domain"] = {"host": "x"}
    assert sorted(unknown_keys(values, chart_defaults())) == [
        "glitchtip.domain.host",
        "web.ingress.hosts[0].hostname",
        "web.replicas",
    ]


def test_settings_carry_over_to_the_values(tmp_path):
    settings = settings_for(
        tmp_path,
        glitchtip_domain=DOMAIN,
        web_replicas="3",
        worker_replicas="2",
        web_concurrency="2",
        worker_concurrency="12",
        retention_days="30",
        default_from_email="GlitchTip <gt@example.com>",
        glitchtip_image="registry.local/glitchtip:6.2.6",
    )
    values = chart_values(settings)
    assert values["image"] == {
        "repository": "registry.local/glitchtip",
        "tag": "6.2.6",
        "pullPolicy": "IfNotPresent",
    }
    assert values["glitchtip"]["domain"] == DOMAIN
    assert values["web"]["replicaCount"] == 3 and values["worker"]["replicaCount"] == 2
    env = {item["name"]: item.get("value") for item in values["extraEnvVars"]}
    assert env["GLITCHTIP_RETENTION_DAYS"] == "30"
    assert env["DEFAULT_FROM_EMAIL"] == "GlitchTip <gt@example.com>"
    assert env["ENABLE_USER_REGISTRATION"] == "false"
    assert env["SESSION_COOKIE_SECURE"] == "true"
    assert env["CSRF_TRUSTED_ORIGINS"] == DOMAIN
    assert values["web"]["extraEnvVars"] == [{"name": "WEB_CONCURRENCY", "value": "2"}]
    assert values["worker"]["extraEnvVars"] == [{"name": "VTASKS_CONCURRENCY", "value": "12"}]
    assert values["web"]["resources"]["requests"] == {"cpu": "200m", "memory": "512Mi"}
    # The whole Ingress: Kubernetes accepts only "Exact", "Prefix" or "ImplementationSpecific"
    # as pathType (case-sensitive; kubernetes-validate's schema does not list them).
    assert values["web"]["ingress"] == {
        "enabled": True,
        "hosts": [
            {"host": "glitchtip.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
        ],
        "tls": [{"secretName": "glitchtip-tls", "hosts": ["glitchtip.example.com"]}],
    }
    assert values["migrationJob"]["command"] == ["bin/run-migrate.sh"]
    assert values["valkey"] == {"enabled": True} and values["postgresql"] == {"enabled": True}
    assert "database" not in values["glitchtip"] and "valkey" not in values["glitchtip"]


def test_a_digest_stays_pinned_and_localhost_gets_no_ingress(tmp_path):
    digest = "sha256:" + "a" * 64
    values = chart_values(
        settings_for(tmp_path, glitchtip_image=f"glitchtip/glitchtip:6.2.6@{digest}")
    )
    assert values["image"]["repository"] == "glitchtip/glitchtip"
    assert values["image"]["tag"] == f"6.2.6@{digest}"
    assert "ingress" not in values["web"]  # http://localhost:8000 is not a host an Ingress serves


def test_the_chart_objects_built_from_the_values_are_valid_kubernetes(tmp_path):
    values = chart_values(settings_for(tmp_path, glitchtip_domain=DOMAIN))
    image = f"{values['image']['repository']}:{values['image']['tag']}"
    for part in ("web", "worker"):
        env = values["extraEnvVars"] + values[part]["extraEnvVars"]
        item = deployment(part, env, values[part]["resources"], image)
        kubernetes_validate.validate(item, chart.KUBERNETES_VERSION, strict=True)
    # The Ingress and the migration Job as the chart's templates build them from these values.
    ingress = values["web"]["ingress"]
    kubernetes_validate.validate(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "glitchtip"},
            "spec": {
                "tls": ingress["tls"],
                "rules": [
                    {
                        "host": rule["host"],
                        "http": {
                            "paths": [
                                {
                                    **path,
                                    "backend": {
                                        "service": {"name": "glitchtip-web", "port": {"number": 80}}
                                    },
                                }
                                for path in rule["paths"]
                            ]
                        },
                    }
                    for rule in ingress["hosts"]
                ],
            },
        },
        chart.KUBERNETES_VERSION,
        strict=True,
    )
    job = values["migrationJob"]
    container = {
        "name": "migrate-job",
        "image": image,
        "command": job["command"],
        "env": values["extraEnvVars"],
    }
    kubernetes_validate.validate(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "glitchtip-migrate"},
            "spec": {
                "activeDeadlineSeconds": job["activeDeadlineSeconds"],
                "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            },
        },
        chart.KUBERNETES_VERSION,
        strict=True,
    )
    broken = deployment("web", [{"name": "X", "valueFrom": {"secretRef": {}}}], {}, image)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, chart.KUBERNETES_VERSION, strict=True)


def test_render_writes_values_and_a_valid_secret_and_prints_no_secret(tmp_path):
    result = run(tmp_path, "render", "--target", "kubernetes", "--check", "--domain", DOMAIN)
    assert result.exit_code == 0, result.output
    env = read_env_file(tmp_path / ".env")
    assert env["GLITCHTIP_KIT_TARGET"] == "kubernetes"
    secret_key = env["SECRET_KEY"]
    values_file = tmp_path / "kubernetes" / "values.yaml"
    secrets_file = tmp_path / "kubernetes" / "secrets.yaml"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(values_file.stat().st_mode) == 0o644
    for secret in (secret_key, env["POSTGRES_PASSWORD"], env["DJANGO_SUPERUSER_PASSWORD"]):
        assert secret not in result.output and secret not in values_file.read_text()
        assert base64.b64encode(secret.encode()).decode() not in result.output
    objects = list(yaml.safe_load_all(secrets_file.read_text()))
    assert [item["kind"] for item in objects] == ["Namespace", "Secret"]
    for item in objects:
        kubernetes_validate.validate(item, chart.KUBERNETES_VERSION, strict=True)
    secret = objects[1]
    assert secret["metadata"] == {
        "name": "glitchtip-kit-secrets",
        "namespace": "glitchtip",
        "labels": {"app.kubernetes.io/managed-by": "glitchtip-kit"},
    }
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert data == {"SECRET_KEY": secret_key, "EMAIL_URL": "consolemail://"}
    values = yaml.safe_load(values_file.read_text())
    assert values["glitchtip"]["existingSecret"] == "glitchtip-kit-secrets"
    assert "helm upgrade --install glitchtip glitchtip/glitchtip --version 8.1.1" in result.output
    # Run from elsewhere (--dir), the commands name the files where they are.
    assert f"kubectl apply --server-side -f {secrets_file.resolve()}" in result.output
    assert f"-f {values_file.resolve()} " in result.output
    assert f"valid for Kubernetes {chart.KUBERNETES_VERSION}" in result.output
    # A second render keeps the secret byte for byte and changes nothing.
    again = run(tmp_path, "render", "--json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert set(report["files"].values()) == {"unchanged"}
    assert read_env_file(tmp_path / ".env")["SECRET_KEY"] == secret_key


def test_external_services_and_s3_uploads_reach_the_chart_through_the_secret(tmp_path):
    database = "postgres://gt:db-Secret-123@db.example.com:5432/glitchtip"
    valkey = "redis://:vk-Secret-456@valkey.example.com:6379/0"
    access, secret_key = "AKIAEXAMPLEKEY123456", "s3-Secret-789-abcdefghijklmnopqrstuv"
    environ = {
        "GLITCHTIP_KIT_DATABASE_URL": database,
        "GLITCHTIP_KIT_DATABASE_SSLMODE": "require",
        "GLITCHTIP_KIT_VALKEY_URL": valkey,
        "GLITCHTIP_KIT_UPLOADS_BUCKET": "glitchtip-uploads",
        "GLITCHTIP_KIT_UPLOADS_ENDPOINT_URL": "https://s3.example.com",
        "GLITCHTIP_KIT_UPLOADS_ACCESS_KEY_ID": access,
        "GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY": secret_key,
    }
    result = run(tmp_path, "render", "--target", "kubernetes", "--check", env=environ)
    assert result.exit_code == 0, result.output
    values_text = (tmp_path / "kubernetes" / "values.yaml").read_text()
    for secret in ("db-Secret-123", "vk-Secret-456", secret_key):
        assert secret not in values_text and secret not in result.output
    values = yaml.safe_load(values_text)
    name = "glitchtip-kit-secrets"
    assert values["glitchtip"]["database"] == {
        "existingSecret": name,
        "existingSecretKey": "DATABASE_URL",
    }
    assert values["glitchtip"]["valkey"] == {
        "existingSecret": name,
        "existingSecretKey": "REDIS_URL",
    }
    assert values["postgresql"] == {"enabled": False} and values["valkey"] == {"enabled": False}
    env = {item["name"]: item for item in values["extraEnvVars"]}
    assert env["AWS_STORAGE_BUCKET_NAME"]["value"] == "glitchtip-uploads"
    assert env["AWS_S3_ENDPOINT_URL"]["value"] == "https://s3.example.com"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": name,
        "key": "AWS_SECRET_ACCESS_KEY",
    }
    assert unknown_keys(values, chart_defaults()) == []
    secret = list(yaml.safe_load_all((tmp_path / "kubernetes" / "secrets.yaml").read_text()))[1]
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert data["DATABASE_URL"] == database + "?sslmode=require"
    assert data["REDIS_URL"] == valkey
    assert data["AWS_ACCESS_KEY_ID"] == access and data["AWS_SECRET_ACCESS_KEY"] == secret_key
    assert "Postgres: the chart's" not in result.output


def test_glitchtip_5_is_refused_and_nothing_is_written(tmp_path):
    result = run(tmp_path, "render", "--target", "kubernetes", "--major", "5")
    line = one_line_error(result)
    assert "GlitchTip 5 cannot run from the Helm chart 8.1.1" in line
    assert "glitchtip_major: 6" in line
    assert list(tmp_path.iterdir()) == []


def test_a_project_name_kubernetes_cannot_use_is_refused(tmp_path):
    result = run(
        tmp_path, "render", "--target", "kubernetes", "--set", "compose_project_name=my_gt"
    )
    line = one_line_error(result)
    assert "cannot name a Helm release or namespace" in line and "no '_'" in line
    assert list(tmp_path.iterdir()) == []


def test_a_symlinked_secrets_file_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "kubernetes").mkdir()
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.write_text("not the kit's\n")
    (tmp_path / "kubernetes" / "secrets.yaml").symlink_to(elsewhere)
    result = run(tmp_path, "render", "--target", "kubernetes")
    assert result.exit_code == 2, result.output
    assert elsewhere.read_text() == "not the kit's\n"
    assert (
        not (tmp_path / ".env").exists() and not (tmp_path / "kubernetes" / "values.yaml").exists()
    )


def test_an_invalid_manifest_is_refused_by_name_without_its_values():
    from provision.errors import UsageError
    from provision.kubernetes.render import validate_manifests

    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "glitchtip-kit-secrets"},
        "data": {"SECRET_KEY": 12345678901234567890},  # not a string: jsonschema quotes it
    }
    with pytest.raises(UsageError) as refused:
        validate_manifests([secret])
    line = refused.value.line()
    assert "Secret glitchtip-kit-secrets: data/SECRET_KEY is not valid for Kubernetes" in line
    assert "12345678901234567890" not in line


def test_an_invalid_env_or_a_symlinked_directory_is_refused_and_nothing_is_written(tmp_path):
    (tmp_path / ".env").write_text("SECRET_KEY=short\n")
    (tmp_path / ".env").chmod(0o600)
    line = one_line_error(run(tmp_path, "render", "--target", "kubernetes"))
    assert "SECRET_KEY" in line and "short" not in line.replace("shorter", "")
    assert not (tmp_path / "kubernetes").exists()
    assert (tmp_path / ".env").read_text() == "SECRET_KEY=short\n"

    other = tmp_path.parent / f"{tmp_path.name}-other"
    other.mkdir()
    (tmp_path / ".env").unlink()
    (tmp_path / "kubernetes").symlink_to(other)
    line = one_line_error(run(tmp_path, "render", "--target", "kubernetes"))
    assert "symbolic link" in line
    assert list(other.iterdir()) == [] and not (tmp_path / ".env").exists()


def test_fullname_follows_the_charts_helper_at_the_63_character_cut() -> None:
    """The chart's `glitchtip.fullname`: a cut that ends on the dash drops it (Kubernetes names
    end in a letter or digit); a release already named after the chart is kept."""
    assert chart.fullname("errors") == "errors-glitchtip"
    assert chart.fullname("glitchtip-prod") == "glitchtip-prod"
    assert chart.fullname("r" * 62) == "r" * 62  # "rrr...r-glitchtip"[:63] ends on "-"
    assert chart.fullname("r" * 70) == "r" * 63


def test_a_release_name_of_exactly_53_characters_is_accepted_54_is_not() -> None:
    """Helm's limit on a release name is 53 characters (the chart appends suffixes to it)."""
    assert chart.is_release_name("a" * 53)
    assert not chart.is_release_name("a" * 54)


def test_a_kubernetes_render_without_secret_key_names_the_fix(tmp_path) -> None:
    from provision.errors import SecretsError
    from provision.kubernetes.manifests import secret_data

    settings = load_settings(tmp_path)
    with pytest.raises(SecretsError) as refused:
        secret_data(settings, {})
    assert refused.value.message == "SECRET_KEY is missing from .env"
    assert refused.value.fix == "run `provision init` (it never replaces one)"


def test_the_default_render_says_what_it_leaves_to_the_operator(tmp_path):
    """Every note of a default render, whole: the operator reads them to know what to install
    (CloudNativePG's operator, by its name) and how to provision afterwards."""
    result = run(tmp_path, "render", "--target", "kubernetes")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: Postgres: the chart's CloudNativePG cluster (the CloudNativePG operator must be "
        "installed); set database_url to use a managed database instead",
        "note: Valkey: the chart's own (valkey.io chart); set valkey_url for an external one",
        "note: no Ingress: http://localhost:8000 is not a public host name (set "
        "glitchtip_domain to the URL users open)",
        "note: admin: kubectl -n glitchtip exec -it deploy/glitchtip-web -- ./manage.py "
        "createsuperuser --email admin@example.com (type DJANGO_SUPERUSER_PASSWORD from .env)",
        "note: then: provision create-project --url http://localhost:8000; provision verify "
        "--skip services --skip disk (verify uses http://localhost:8000)",
    ]


def test_an_image_pinned_by_digest_alone_is_refused_with_the_fix(tmp_path):
    """The chart joins `repository:tag`: an image without a tag cannot be expressed there."""
    digest = "sha256:" + "a" * 64
    result = run(
        tmp_path, "render", "--target", "kubernetes",
        "--set", f"glitchtip_image=glitchtip/glitchtip@{digest}",
    )  # fmt: skip
    assert one_line_error(result) == (
        f"error: glitchtip_image: 'glitchtip/glitchtip@{digest}' has no tag, and the chart "
        "needs one: pin a tag as well as the digest (name:tag@sha256:...)"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_values_of_an_external_database_and_valkey_behind_https_are_whole(
    tmp_path, kit_environ
):
    """The whole values file for a common production shape (external Postgres and Valkey, an
    https domain, replicas): each key is what the chart reads (checked against its values.yaml
    above); secrets only as references to the kit's Secret, never as values."""
    settings = settings_for(
        tmp_path,
        glitchtip_domain=DOMAIN,
        database_url="postgres://gt:pw@db.example.com:5432/glitchtip",
        valkey_url="redis://:pw@valkey.example.com:6379/0",
        web_replicas="3",
        worker_replicas="2",
    )
    assert chart_values(settings) == (
        {
            "image": {
                "repository": "glitchtip/glitchtip",
                "tag": "6.2.6",
                "pullPolicy": "IfNotPresent",
            },
            "glitchtip": {
                "domain": "https://glitchtip.example.com",
                "existingSecret": "glitchtip-kit-secrets",
                "existingSecretKey": "SECRET_KEY",
                "database": {
                    "existingSecret": "glitchtip-kit-secrets",
                    "existingSecretKey": "DATABASE_URL",
                },
                "valkey": {
                    "existingSecret": "glitchtip-kit-secrets",
                    "existingSecretKey": "REDIS_URL",
                },
            },
            "extraEnvVars": [
                {
                    "name": "EMAIL_URL",
                    "valueFrom": {
                        "secretKeyRef": {"name": "glitchtip-kit-secrets", "key": "EMAIL_URL"}
                    },
                },
                {"name": "DEFAULT_FROM_EMAIL", "value": "glitchtip@localhost"},
                {"name": "CSRF_TRUSTED_ORIGINS", "value": "https://glitchtip.example.com"},
                {"name": "ENABLE_USER_REGISTRATION", "value": "false"},
                {"name": "ENABLE_SOCIAL_APPS_USER_REGISTRATION", "value": "false"},
                {"name": "ENABLE_ORGANIZATION_CREATION", "value": "false"},
                {"name": "GLITCHTIP_RETENTION_DAYS", "value": "90"},
                {"name": "DATABASE_POOL_MAX_SIZE", "value": "20"},
                {"name": "DATABASE_CONN_HEALTH_CHECKS", "value": "true"},
                {"name": "SESSION_COOKIE_SECURE", "value": "true"},
            ],
            "migrationJob": {
                "enabled": True,
                "command": ["bin/run-migrate.sh"],
                "activeDeadlineSeconds": 900,
            },
            "web": {
                "replicaCount": 3,
                "resources": {
                    "requests": {"cpu": "200m", "memory": "512Mi"},
                    "limits": {"cpu": "2000m", "memory": "1024Mi"},
                },
                "extraEnvVars": [{"name": "WEB_CONCURRENCY", "value": "2"}],
                "ingress": {
                    "enabled": True,
                    "hosts": [
                        {
                            "host": "glitchtip.example.com",
                            "paths": [{"path": "/", "pathType": "Prefix"}],
                        }
                    ],
                    "tls": [{"secretName": "glitchtip-tls", "hosts": ["glitchtip.example.com"]}],
                },
            },
            "worker": {
                "enabled": True,
                "replicaCount": 2,
                "resources": {
                    "requests": {"cpu": "100m", "memory": "350Mi"},
                    "limits": {"cpu": "900m", "memory": "768Mi"},
                },
                "extraEnvVars": [{"name": "VTASKS_CONCURRENCY", "value": "20"}],
            },
            "valkey": {"enabled": False},
            "postgresql": {"enabled": False},
        }
    )


def test_render_prints_what_it_wrote_and_the_install_commands_whole(tmp_path):
    """The whole output of `render --target kubernetes`, first and second time: what changed,
    the commands to install or upgrade (the files named where they are), the notes."""
    first = run(tmp_path, "render", "--target", "kubernetes", "--domain", DOMAIN)
    again = run(tmp_path, "render", "--target", "kubernetes", "--domain", DOMAIN)
    assert (first.exit_code, again.exit_code) == (0, 0), first.output + again.output
    k = tmp_path.resolve() / "kubernetes"
    rest = [
        "Install or upgrade (the same commands for both):",
        "  helm repo add glitchtip https://gitlab.com/api/v4/projects/16325141/packages/helm/stable",
        "  helm repo update glitchtip",
        f"  kubectl apply --server-side -f {k}/secrets.yaml",
        "  helm upgrade --install glitchtip glitchtip/glitchtip --version 8.1.1 --namespace "
        f"glitchtip -f {k}/values.yaml --timeout 15m",
        "  kubectl -n glitchtip rollout status deploy/glitchtip-web",
        "note: Postgres: the chart's CloudNativePG cluster (the CloudNativePG operator must be "
        "installed); set database_url to use a managed database instead",
        "note: Valkey: the chart's own (valkey.io chart); set valkey_url for an external one",
        "note: Ingress: glitchtip.example.com with TLS from the Secret glitchtip-tls (cert-manager "
        "or your own); your own values (ingress class, annotations, node selectors) go in a file "
        "of yours after the kit's: -f kubernetes/values.yaml -f values.local.yaml",
        "note: admin: kubectl -n glitchtip exec -it deploy/glitchtip-web -- ./manage.py "
        "createsuperuser --email admin@example.com (type DJANGO_SUPERUSER_PASSWORD from .env)",
        "note: then: provision create-project --url https://glitchtip.example.com; provision "
        "verify --skip services --skip disk (verify uses https://glitchtip.example.com)",
    ]
    written = [".env", "kubernetes/values.yaml", "kubernetes/secrets.yaml"]
    assert first.output.splitlines() == [f"{name}: written" for name in written] + rest
    assert again.output.splitlines() == [f"{name}: unchanged" for name in written] + rest
