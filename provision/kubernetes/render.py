"""`provision render --target kubernetes`: write kubernetes/values.yaml and secrets.yaml.

The edge of the package. Under the deployment lock it reads `.env`, refuses an invalid one,
generates the secrets still missing (never one that exists) and records the settings given for
this run (`target` among them) like every render, then writes values.yaml (0644) and
secrets.yaml (0600) atomically. Every check runs before the first write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from provision.kubernetes import chart, manifests, values
from provision.settings import Settings

DIRECTORY = "kubernetes"
VALUES_FILE = f"{DIRECTORY}/values.yaml"
SECRETS_FILE = f"{DIRECTORY}/secrets.yaml"


@dataclass
class KubernetesRender:
    """What a render wrote and what the operator runs next."""

    changed: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "files": {
                name: ("written" if name in self.changed else "unchanged")
                for name in (".env", VALUES_FILE, SECRETS_FILE)
            },
            "chart": f"{chart.CHART_NAME} {chart.CHART_VERSION}",
            "kubernetes_version": chart.KUBERNETES_VERSION,
            "commands": self.commands,
            "notes": self.notes,
        }


def helm_commands(settings: Settings) -> list[str]:
    """The commands that install or upgrade the release (the same ones for both). Helm waits
    for the chart's migration Job (a post-install and pre-upgrade hook) within --timeout; no
    --wait: on a first install the web pods would be awaited before the migrations run."""
    import shlex

    release = values.release_name(settings)
    secrets_path = shlex.quote(shown_path(settings, SECRETS_FILE))
    values_path = shlex.quote(shown_path(settings, VALUES_FILE))
    return [
        f"helm repo add {chart.CHART_REPO_NAME} {chart.CHART_REPO_URL}",
        f"helm repo update {chart.CHART_REPO_NAME}",
        f"kubectl apply --server-side -f {secrets_path}",
        f"helm upgrade --install {release} {chart.CHART_REPO_NAME}/{chart.CHART_NAME} "
        f"--version {chart.CHART_VERSION} --namespace {release} -f {values_path} "
        "--timeout 15m",
        f"kubectl -n {release} rollout status {web_deployment(settings)}",
    ]


def shown_path(settings: Settings, name: str) -> str:
    """`name` (inside the deployment directory) as a command run from here can use it."""
    path = Path(settings.directory) / name
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def web_deployment(settings: Settings) -> str:
    """`deploy/<fullname>-web`, the chart's web Deployment."""
    return f"deploy/{chart.fullname(values.release_name(settings))}-web"


def next_steps(settings: Settings) -> list[str]:
    """What the values leave to the operator, and how the kit's provisioning follows."""
    release = values.release_name(settings)
    web = web_deployment(settings)
    notes = []
    if not values.external_database_url(settings):
        notes.append(
            "Postgres: the chart's CloudNativePG cluster (the CloudNativePG operator must be "
            "installed); set database_url to use a managed database instead"
        )
    if not values.external_valkey_url(settings):
        notes.append(
            "Valkey: the chart's own (valkey.io chart); set valkey_url for an external one"
        )
    if values.wants_ingress(settings):
        tls = (
            f" with TLS from the Secret {release}-tls (cert-manager or your own)"
            if settings.glitchtip_domain.startswith("https://")
            else ""
        )
        notes.append(
            f"Ingress: {values.public_host(settings)}{tls}; your own values (ingress class, "
            "annotations, node selectors) go in a file of yours after the kit's: "
            f"-f {VALUES_FILE} -f values.local.yaml"
        )
    else:
        notes.append(
            f"no Ingress: {settings.glitchtip_domain} is not a public host name "
            "(set glitchtip_domain to the URL users open)"
        )
    notes.append(
        f"admin: kubectl -n {release} exec -it {web} -- ./manage.py createsuperuser "
        f"--email {settings.admin_email} (type DJANGO_SUPERUSER_PASSWORD from .env)"
    )
    notes.append(
        f"then: provision create-project --url {settings.glitchtip_domain}; "
        f"provision verify --skip services --skip disk (verify uses {settings.glitchtip_domain})"
    )
    return notes


def write_kubernetes(settings: Settings, check: bool = False) -> KubernetesRender:
    """Render and write the files; with `check`, validate the manifests against Kubernetes
    `chart.KUBERNETES_VERSION`'s schemas (needs kubernetes-validate) before writing."""
    from provision.envfile import read_env_file, update_env_file
    from provision.fileio import (
        PUBLIC_FILE_MODE,
        SECRET_FILE_MODE,
        check_writable_target,
        write_atomic,
    )
    from provision.locking import locked
    from provision.secrets import ENV_HEADER, missing_secrets, validate_secrets
    from provision.settings import recorded_values

    root = Path(settings.directory)
    folder = root / DIRECTORY
    result = KubernetesRender()
    with locked(root):
        env = read_env_file(settings.env_path)
        validate_secrets(env)
        new = missing_secrets(env)
        env = {**env, **new}
        values_yaml = values.values_text(settings)
        secrets_yaml = manifests.secrets_text(settings, env)
        if check:
            validate_manifests(manifests.manifests(settings, env))
        for path in (settings.env_path, root / VALUES_FILE, root / SECRETS_FILE):
            check_writable_target(path)
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            from provision.errors import UsageError

            raise UsageError(
                f"{folder} is a symbolic link or not a directory",
                "the kit writes kubernetes/ only into a directory of its own: move it away",
            )
        # As every render: the deployment-identifying settings given for this run (`target`
        # among them) are recorded, the others' records cleared.
        if update_env_file(settings.env_path, {**new, **recorded_values(settings)}, ENV_HEADER):
            result.changed.append(".env")
        folder.mkdir(mode=0o755, exist_ok=True)
        if write_atomic(root / VALUES_FILE, values_yaml, mode=PUBLIC_FILE_MODE):
            result.changed.append(VALUES_FILE)
        if write_atomic(root / SECRETS_FILE, secrets_yaml, mode=SECRET_FILE_MODE):
            result.changed.append(SECRETS_FILE)
    result.commands = helm_commands(settings)
    result.notes = next_steps(settings)
    return result


def validate_manifests(objects: list[dict]) -> None:
    """Each object against Kubernetes `chart.KUBERNETES_VERSION` (strict: unknown fields fail).
    The error names the object and field only, never a value (the Secret's are secrets)."""
    from provision.errors import KitError, UsageError

    try:
        import kubernetes_validate
    except ImportError:
        raise KitError(
            "render --check for Kubernetes needs kubernetes-validate",
            "install the kit's dev extra: pip install -e '.[dev]'",
        ) from None
    for item in objects:
        try:
            kubernetes_validate.validate(item, chart.KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in error.path) or "(the object)"
            raise UsageError(
                f"{item.get('kind')} {item.get('metadata', {}).get('name')}: {where} is not "
                f"valid for Kubernetes {chart.KUBERNETES_VERSION}",
                "report this as a bug of the kit",
            ) from None
