"""Admin: the first superuser, from `.env`, with `manage.py createsuperuser --noinput`.

The e-mail and the password (generated once by the render step, kept 0600 in `.env` under
DJANGO_SUPERUSER_EMAIL / DJANGO_SUPERUSER_PASSWORD) reach the web container through the
environment of `compose exec`, never its command line. GlitchTip answers a second run with exit 1
and "That email is already taken": that means the admin exists, which is success.
"""

from __future__ import annotations

from provision.envfile import read_env_file, update_env_file
from provision.errors import KitError
from provision.stack.context import StackContext
from provision.stack.runner import StepOutcome

EMAIL_KEY = "DJANGO_SUPERUSER_EMAIL"
PASSWORD_KEY = "DJANGO_SUPERUSER_PASSWORD"
ALREADY_TAKEN = "already taken"
PASSWORD_WHERE = f".env, key {PASSWORD_KEY}"


def admin_credentials(ctx: StackContext) -> tuple[str, str]:
    """The admin e-mail (from the settings, recorded in .env) and the password from `.env`."""
    settings = ctx.load_settings()
    env = read_env_file(ctx.env_path)
    password = env.get(PASSWORD_KEY)
    if not password:
        raise KitError(
            f"{ctx.env_path} has no {PASSWORD_KEY}",
            "run `provision render` to generate the missing secrets (existing ones are kept)",
        )
    email = settings.admin_email
    if env.get(EMAIL_KEY) != email:  # .env records the admin the stack was given
        update_env_file(ctx.env_path, {EMAIL_KEY: email})
    return email, password


def create_admin(ctx: StackContext) -> StepOutcome:
    """Create the superuser unless it exists; the password never leaves `.env` in clear."""
    email, password = admin_credentials(ctx)
    compose = ctx.compose()
    result = compose.run(
        "exec",
        "-T",
        "-e",
        EMAIL_KEY,
        "-e",
        PASSWORD_KEY,
        "web",
        "./manage.py",
        "createsuperuser",
        "--noinput",
        env={EMAIL_KEY: email, PASSWORD_KEY: password},
        timeout=180,
    )
    ctx.results["admin_email"] = email
    if result.ok:
        return StepOutcome(f"created {email} (password in {PASSWORD_WHERE})", changed=True)
    if result.returncode == 1 and ALREADY_TAKEN in result.output:
        return StepOutcome(f"{email} already exists", changed=False)
    raise KitError(
        f"createsuperuser exited {result.returncode}: {result.last_lines(2) or 'no output'}",
        "see `provision logs web`",
    )
