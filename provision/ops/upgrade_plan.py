"""What `provision upgrade` will do, decided before anything changes (pure, no I/O).

The plan compares what runs now (the settings of record, the version the running GlitchTip
reports, pg_partman) with what `--to` and `--postgres` ask for, refuses what cannot be done
safely, and lists the settings to write and the steps to run.

Decisions:
- `--to X` without `/` or `:` is a tag of the current GlitchTip repository (a mirror stays a
  mirror); `--to repo/name:tag` is a whole image. Without `--to`, the kit's pinned image of the
  current major (same repository): after updating the kit, `provision upgrade` takes its pins;
  with only `--postgres`, GlitchTip stays as it is.
- A GlitchTip major upgrade (5 -> 6) keeps the Postgres and Valkey images: they are pinned in
  glitchtip.yaml when they were derived from the old major, so the Postgres image of 6 (18, a new
  data layout) never points at a 17 volume. The Postgres major upgrade is its own, explicit step
  (`--postgres 18`, in the same run or later): a dump and restore whose downtime grows with the
  database, which an operator schedules on purpose.
- A downgrade (an older major, or an older tag than the version the running GlitchTip reports,
  i.e. the one that migrated the database) is refused: migrations are not reversible.
- pg_partman deployments cannot move to a major without pg_partman.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provision import majors
from provision.errors import UsageError

POSTGRES_VOLUME_KEY = "GLITCHTIP_KIT_POSTGRES_VOLUME"  # .env; compose.yml interpolates it

# Step names, in order; `postgres` only with a Postgres major upgrade.
STEPS = ("preflight", "pull", "stop", "backup", "settings", "postgres", "start", "verify")

PARTMAN_STEPS = (
    "GlitchTip {target} has no pg_partman support and GlitchTip ships no way to convert a "
    "pg_partman database; to leave it: 1) `provision backup` here and keep the archive; "
    "2) deploy GlitchTip {target} in a new directory without advanced partitioning "
    "(`provision up --major {target}`, another compose_project_name and http_port); "
    "3) `provision create-project` there and point your apps at its DSN; 4) keep this "
    "deployment until its events expire, then `provision down --volumes` here"
)


@dataclass(frozen=True)
class Current:
    """What the deployment runs now."""

    major: int
    glitchtip_image: str
    postgres_image: str
    postgres_major: int
    valkey_image: str
    partman: bool
    compose_project_name: str
    postgres_volume: str  # the engine's name of the Postgres volume now
    server_version: str | None = None  # what GET /api/settings/ reports
    partman_image: str = ""
    # setting name -> source ("file", "environment", "derived", ...), from Settings.sources
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpgradePlan:
    """The upgrade to run: target images, settings to write, and the steps."""

    current: Current
    glitchtip_image: str
    major: int
    postgres_image: str
    postgres_major: int
    settings: dict[str, Any]  # glitchtip.yaml name -> new value
    env: dict[str, str]  # .env key -> new value
    notes: list[str] = field(default_factory=list)

    @property
    def glitchtip_changes(self) -> bool:
        return self.glitchtip_image != self.current.glitchtip_image

    @property
    def postgres_upgrade(self) -> bool:
        return self.postgres_major != self.current.postgres_major

    @property
    def nothing_to_do(self) -> bool:
        # A new Postgres image of the same major (18.1 -> 18.2) is a change without a dump.
        same_postgres = self.postgres_image == self.current.postgres_image
        return not self.glitchtip_changes and same_postgres

    @property
    def new_volume(self) -> str | None:
        return self.env.get(POSTGRES_VOLUME_KEY) if self.postgres_upgrade else None

    def steps(self) -> list[str]:
        """The step names this plan runs."""
        if self.nothing_to_do:
            return ["preflight"]
        return [s for s in STEPS if s != "postgres" or self.postgres_upgrade]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": {
                "glitchtip_image": self.current.glitchtip_image,
                "glitchtip_major": self.current.major,
                "server_version": self.current.server_version,
                "postgres_image": self.current.postgres_image,
                "postgres_major": self.current.postgres_major,
                "postgres_volume": self.current.postgres_volume,
            },
            "to": {
                "glitchtip_image": self.glitchtip_image,
                "glitchtip_major": self.major,
                "postgres_image": self.postgres_image,
                "postgres_major": self.postgres_major,
                "postgres_volume": self.new_volume or self.current.postgres_volume,
            },
            "settings": dict(self.settings),
            "steps": self.steps(),
            "notes": list(self.notes),
        }


_VERSION = re.compile(r"v?([0-9]+(?:\.[0-9]+)*)")


def version_key(text: str | None) -> tuple[int, ...] | None:
    """`6.2.6` -> (6, 2, 6), `v5.1.0` -> (5, 1, 0), `5.1.1-standin` -> (5, 1, 1); None when
    `text` does not start with a version (a digest, `stable`)."""
    if not text:
        return None
    match = _VERSION.match(text.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def image_parts(image: str) -> tuple[str, str | None]:
    """(repository, tag) of an image reference; the tag is None for a digest-only reference."""
    name = image.split("@", 1)[0]
    repository, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:  # no tag, or the ':' belonged to a registry port
        return name, None
    return repository, tag


def tag_of(image: str) -> str | None:
    return image_parts(image)[1]


def resolve_image(value: str, current_image: str, what: str) -> str:
    """`--to`/`--postgres` VALUE as an image: a bare tag goes on the current repository."""
    from provision.settings import Invalid, parse_image

    text = value.strip()
    if not text:
        raise UsageError(f"{what} is empty", "give a version (6.2.7) or an image (name:tag)")
    if "/" not in text and ":" not in text and "@" not in text:
        text = f"{image_parts(current_image)[0]}:{text}"
    try:
        return parse_image(text)
    except Invalid as problem:
        raise UsageError(f"{what} {problem.problem}", problem.fix) from None


def check_target_values(
    to: str | None, postgres: str | None, current_image: str = "glitchtip/glitchtip:6.2.6"
) -> None:
    """`--to` and `--postgres` checked on their own, before any engine call: an image reference
    that is not one, or a GlitchTip tag that floats, is refused at once. `current_image` (the
    settings' glitchtip_image) is the repository a bare version goes on."""
    if to is not None:
        image = resolve_image(to, current_image, "--to")
        _require_pinned(image)
    if postgres is not None:
        resolve_image(postgres, "postgres:18.1", "--postgres")


OFFICIAL_IMAGE = "glitchtip/glitchtip"
_OFFICIAL_NAMES = {
    OFFICIAL_IMAGE,
    f"docker.io/{OFFICIAL_IMAGE}",
    f"index.docker.io/{OFFICIAL_IMAGE}",
}


def _require_pinned(image: str) -> None:
    """GlitchTip's own repository tags each release (6.2.6, v5.1.0) and moves its short tags
    (6, 6.2) with every release, like latest: such a tag changes under the deployment at the
    next pull, so the version the database was migrated by is no longer known. Refused there
    unless pinned by digest. A mirror's or a private registry's tags are its owner's scheme
    (a tag of 6 there may be a frozen copy) and are taken as given."""
    if "@" in image or image_parts(image)[0] not in _OFFICIAL_NAMES:
        return
    found = version_key(tag_of(image))
    if found is not None and len(found) < 3:
        raise UsageError(
            f"--to {image} is a floating tag: it moves to whatever release is newest",
            "give a release tag (e.g. 6.2.7) or a digest (name@sha256:...), as for latest",
        )


def is_older(target: tuple[int, ...], current: tuple[int, ...]) -> bool:
    """Whether `target` is older than `current`, compared on the parts both name (`6` is not
    older than `6.2.6`: a floating major tag)."""
    length = min(len(target), len(current))
    return target[:length] < current[:length]


def _major_of(image: str, what: str) -> int:
    from provision.settings import image_tag_major

    found = image_tag_major(image)
    if found is None:
        raise UsageError(
            f"{what} {image!r} has no version in its tag, so its GlitchTip major is unknown",
            "use an image whose tag starts with the version (e.g. glitchtip/glitchtip:6.2.7)",
        )
    if found not in majors.MAJORS:
        known = " or ".join(str(n) for n in sorted(majors.MAJORS))
        raise UsageError(
            f"{what} {image!r} is GlitchTip {found}, which this kit does not know",
            f"use a GlitchTip {known} image (or update the kit)",
        )
    return found


def _postgres_major_of(image: str) -> int:
    from provision.settings import image_tag_major

    found = image_tag_major(image)
    if found is None:
        raise UsageError(
            f"--postgres {image!r} has no major version in its tag",
            "use an image whose tag starts with the major (e.g. postgres:18.1)",
        )
    return found


def _writable(current: Current, name: str, env_name: str) -> None:
    """The upgrade writes `name` into glitchtip.yaml; an environment variable would win."""
    if current.sources.get(name) in ("environment", "option"):
        raise UsageError(
            f"{name} is set by the environment variable {env_name}, which would override the "
            "upgraded value in glitchtip.yaml",
            f"unset {env_name} (keep the value in glitchtip.yaml), then run the upgrade again",
        )


def make_plan(current: Current, to: str | None, postgres: str | None) -> UpgradePlan:
    """The plan for `provision upgrade [--to TO] [--postgres POSTGRES]`; refusals raise
    `UsageError` (exit 2) before anything is touched."""
    from provision.settings import SPEC_BY_NAME

    notes: list[str] = []
    if to is None and postgres is not None:
        image = current.glitchtip_image  # `--postgres` alone moves Postgres only
    elif to is None:
        pinned = majors.MAJORS[current.major].glitchtip_image
        image = f"{image_parts(current.glitchtip_image)[0]}:{tag_of(pinned)}"
    else:
        image = resolve_image(to, current.glitchtip_image, "--to")
        _require_pinned(image)
    major = _major_of(image, "--to") if to is not None else current.major

    # Downgrades: the major, then the version the database has been migrated by.
    if major < current.major:
        raise UsageError(
            f"{image} is GlitchTip {major}, older than the GlitchTip {current.major} this "
            "database was migrated by; migrations cannot be undone",
            f"stay on GlitchTip {current.major}, or restore a backup taken before the upgrade "
            "(`provision restore FILE --replace`)",
        )
    running = version_key(current.server_version)
    migrated_by = running or version_key(tag_of(current.glitchtip_image))
    wanted = version_key(tag_of(image))
    if image != current.glitchtip_image and wanted and migrated_by:  # noqa: SIM102
        if is_older(wanted, migrated_by):
            shown = current.server_version or current.glitchtip_image
            raise UsageError(
                f"{image} is older than GlitchTip {shown}, which this database was migrated by; "
                "migrations cannot be undone",
                "choose the running version or a newer one, or restore a backup taken before "
                "that upgrade (`provision restore FILE --replace`)",
            )
    if major != current.major and current.partman and not majors.MAJORS[major].supports_partman:
        raise UsageError(
            "this deployment uses pg_partman advanced partitioning",
            PARTMAN_STEPS.format(target=major),
        )

    settings: dict[str, Any] = {}
    env: dict[str, str] = {}
    if image != current.glitchtip_image:
        _writable(current, "glitchtip_image", SPEC_BY_NAME["glitchtip_image"].env)
        settings["glitchtip_image"] = image
    if major != current.major:
        _writable(current, "glitchtip_major", SPEC_BY_NAME["glitchtip_major"].env)
        settings["glitchtip_major"] = major

    postgres_image = current.postgres_image
    postgres_major = current.postgres_major
    if postgres is not None:
        postgres_image = resolve_image(postgres, current.postgres_image, "--postgres")
        postgres_major = _postgres_major_of(postgres_image)
        if postgres_major < current.postgres_major:
            raise UsageError(
                f"--postgres {postgres_image} is Postgres {postgres_major}, older than the "
                f"running Postgres {current.postgres_major}, which cannot be read by it",
                f"give Postgres {current.postgres_major} or newer",
            )
        if postgres_major < majors.MINIMUM_POSTGRES:
            raise UsageError(
                f"Postgres {postgres_major} is older than {majors.MINIMUM_POSTGRES}",
                f"use Postgres {majors.MINIMUM_POSTGRES} or newer",
            )
        if postgres_image != current.postgres_image:
            _writable(current, "postgres_image", SPEC_BY_NAME["postgres_image"].env)
            settings["postgres_image"] = postgres_image
        if postgres_major != current.postgres_major:
            _writable(current, "postgres_version", SPEC_BY_NAME["postgres_version"].env)
            _writable(current, "postgres_data_path", SPEC_BY_NAME["postgres_data_path"].env)
            if current.sources.get("postgres_version") == "file":
                settings["postgres_version"] = postgres_major
            if current.sources.get("postgres_data_path") == "file":
                settings["postgres_data_path"] = majors.postgres_data_path(postgres_major)
            if current.sources.get("partman_image") == "file":
                # It must name the same Postgres major (the settings refuse another one).
                same = current.partman_image == current.postgres_image
                settings["partman_image"] = (
                    postgres_image if same else majors.partman_image_for(postgres_major)
                )
            env[POSTGRES_VOLUME_KEY] = f"{current.compose_project_name}_postgres-{postgres_major}"
    # Images derived from the major stay what they are: a major upgrade changes GlitchTip only.
    if major != current.major:
        row = majors.MAJORS[major]
        for name, value, default in (
            ("postgres_image", postgres_image, row.postgres_image),
            ("valkey_image", current.valkey_image, row.valkey_image),
        ):
            if name not in settings and current.sources.get(name) == "derived" and value != default:
                settings[name] = value
        if current.postgres_major == postgres_major and postgres is None:
            newer = version_key(tag_of(row.postgres_image))
            if newer and newer[0] > current.postgres_major:
                notes.append(
                    f"Postgres stays {current.postgres_major}; GlitchTip {major}'s default is "
                    f"{newer[0]}: `provision upgrade --postgres {tag_of(row.postgres_image)}` "
                    "moves the database (dump and restore into a new volume) when you choose"
                )
    return UpgradePlan(
        current=current,
        glitchtip_image=image,
        major=major,
        postgres_image=postgres_image,
        postgres_major=postgres_major,
        settings=settings,
        env=env,
        notes=notes,
    )
