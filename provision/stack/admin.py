"""Admin: the first superuser, from `.env`, with `manage.py createsuperuser --noinput`.

The e-mail and the password (generated once by the render step, kept 0600 in `.env` under
DJANGO_SUPERUSER_EMAIL / DJANGO_SUPERUSER_PASSWORD) reach the web container through the
environment of `compose exec`, never its command line. GlitchTip answers a second run with exit 1
and "That email is already taken": that means the admin exists, which is success.

`createsuperuser` boots Django in the web container (about 2 s on a real GlitchTip), so it runs
only when GlitchTip cannot show that the admin exists. Two answers prove it, and neither can be
wrong: the API token stored in `.env` answers `GET /api/0/` as a superuser with the admin's
e-mail (a token is a row of this database, tied to its user), or GlitchTip accepts a login with
the admin's e-mail and the password from `.env` (the migrate service runs `createsuperuser` right
after the migrations, before web starts, so on a new database the login already succeeds). The
token that login mints is kept in `.env` for the project step, so the login happens once per run
at most. Any other answer
(401, 400, no answer) falls back to `createsuperuser`, as before.
"""

from __future__ import annotations

from collections.abc import Callable

from provision.envfile import read_env_file, update_env_file
from provision.errors import KitError
from provision.stack.context import StackContext
from provision.steps import StepOutcome

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


def _is_admin(body: object, email: str) -> bool:
    user = body.get("user") if isinstance(body, dict) else None
    if not isinstance(user, dict):
        return False
    same = str(user.get("email", "")).strip().lower() == email.strip().lower()
    return same and user.get("isSuperuser") is True


def existing_admin(ctx: StackContext, email: str, password: str) -> tuple[str, bool] | None:
    """(evidence, whether `.env` changed) when GlitchTip shows the admin exists; else None."""
    from provision.api.bootstrap import bootstrap_token
    from provision.api.client import GlitchTipClient, RetryPolicy
    from provision.errors import ApiError
    from provision.provisioning import TOKEN_KEY

    url = str(ctx.load_settings().internal_url)
    retry = RetryPolicy(attempts=2, backoff=0.2)
    stored = read_env_file(ctx.env_path).get(TOKEN_KEY)
    try:
        if stored:
            with GlitchTipClient(url, stored, retry=retry, secrets=(password,)) as client:
                try:
                    if _is_admin(client.whoami(), email):
                        return f"the API token in .env answers as {email}", False
                except ApiError as error:
                    if error.status != 401:
                        return None
        token = bootstrap_token(url, email, password, retry=retry)
        # A login proves a user with that e-mail, not a superuser: ask GlitchTip who it is.
        with GlitchTipClient(url, token, retry=retry, secrets=(password,)) as client:
            if not _is_admin(client.whoami(), email):
                return None
    except KitError:
        return None  # rejected login (400), no answer, anything unclear: createsuperuser decides
    update_env_file(ctx.env_path, {TOKEN_KEY: token})
    from provision import secret_files

    secret_files.sync(ctx.load_settings())  # the token's secret file follows .env
    return f"logged in as {email} with the password in .env", True


Prover = Callable[[StackContext, str, str], tuple[str, bool] | None]


def create_admin(ctx: StackContext, prove: Prover = existing_admin) -> StepOutcome:
    """Create the superuser unless it exists; the password never leaves `.env` in clear."""
    email, password = admin_credentials(ctx)
    ctx.results["admin_email"] = email
    evidence = prove(ctx, email, password)
    if evidence is not None:
        detail, token_stored = evidence
        kept = "; its API token kept in .env" if token_stored else ""
        return StepOutcome(f"{email} already exists ({detail}){kept}", changed=token_stored)
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
    if result.ok:
        return StepOutcome(f"created {email} (password in {PASSWORD_WHERE})", changed=True)
    if result.returncode == 1 and ALREADY_TAKEN in result.output:
        return StepOutcome(f"{email} already exists", changed=False)
    raise KitError(
        f"createsuperuser exited {result.returncode}: {result.last_lines(2) or 'no output'}",
        "see `provision logs web`",
    )
