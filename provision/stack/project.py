"""Project: API token, organization, team, project and DSN, through `create-project`'s code.

`provision.provisioning.provision_project` gets or creates each object (list, then create), keeps
the API token in `.env` and writes the DSN to `.glitchtiprc`; running it again creates nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from provision.stack.admin import admin_credentials
from provision.stack.context import StackContext
from provision.steps import StepOutcome

RC_FILE = ".glitchtiprc"


def project_request(ctx: StackContext) -> Any:
    """The `ProjectRequest` for the settings' default org, team and project."""
    from provision.provisioning import ProjectRequest

    settings = ctx.load_settings()
    email, password = admin_credentials(ctx)
    wanted = {
        "url": str(settings.internal_url),
        "token": None,
        "admin_email": email,
        "admin_password": password,
        "env_path": ctx.env_path,
        "org": settings.organization,
        "team": None,
        "project": settings.project,
        "platform": settings.platform,
        "key_name": None,
        "rc_path": Path(settings.directory) / RC_FILE,
        "rc_format": "glitchtiprc",
    }
    known = {field.name for field in dataclasses.fields(ProjectRequest)}
    return ProjectRequest(**{key: value for key, value in wanted.items() if key in known})


def create_project(ctx: StackContext) -> StepOutcome:
    """The project step: get or create everything, leave the result for the wrap-up."""
    from provision import secret_files
    from provision.provisioning import provision_project

    result = provision_project(project_request(ctx), progress=ctx.note)
    secret_files.sync(ctx.load_settings())  # a token minted here reaches its secret file
    ctx.results["project"] = result
    created = list(getattr(result, "created", []) or [])
    where = f"{result.org_slug}/{result.team_slug}/{result.project_slug}"
    if created:
        return StepOutcome(f"created {', '.join(map(str, created))} ({where})", changed=True)
    return StepOutcome(f"{where} already set up", changed=False)
