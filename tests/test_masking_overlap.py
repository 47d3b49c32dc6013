"""Secrets that hold one another, and a `.glitchtiprc` the masking cannot use.

`redact` replaces the longest secret first: a password inside a URL (an operator's
`DATABASE_URL` beside the kit's `POSTGRES_PASSWORD`) is masked with the whole URL, not cut out
of it leaving the rest of the URL on show. The order is by length, not by the text's sort.
"""

from __future__ import annotations

import pytest

from provision.deployment import Deployment, secrets_of
from provision.masking import MASK, mask_url_password, redact, url_passwords
from provision.settings import load_settings

KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "secrets",
    [
        ["zz-inner-zz", "aa-zz-inner-zz-bb"],
        ["aa-zz-inner-zz-bb", "zz-inner-zz"],
    ],
)
def test_a_secret_inside_a_longer_one_is_masked_with_it_whole(secrets):
    text = "before aa-zz-inner-zz-bb between zz-inner-zz after"
    assert redact(text, secrets) == f"before {MASK} between {MASK} after"


def test_secrets_shorter_than_four_characters_or_empty_are_left_alone():
    assert redact("abc abcd ab", ["abc", "", None, "abcd"]) == f"abc {MASK} ab"


def test_a_password_inside_an_operators_url_is_masked_with_the_url(tmp_path):
    password = "zq7Kd0Lw9Xv2Np4Rt6Yb"
    url = f"postgres://glitchtip:{password}@db.example.com:5432/glitchtip"
    (tmp_path / ".env").write_text(f"POSTGRES_PASSWORD={password}\nEXTERNAL_DB_URL={url}\n")
    (tmp_path / ".env").chmod(0o600)
    compose = Deployment(load_settings(tmp_path, {}, environ={}), ("dc",)).compose()
    line = f"web-1  | connecting to {url} (password {password})"
    assert compose.redact(line) == f"web-1  | connecting to {MASK} (password {MASK})"


@pytest.mark.parametrize(
    "rc",
    [
        "[defaults]\norg = glitchtip\nproject = default\n",  # no url (yet)
        "[defaults]\nurl =\n",
        "[defaults]\nurl = not a dsn\n",
        "not an ini file\n",
    ],
)
def test_a_glitchtiprc_without_a_usable_dsn_adds_nothing_to_mask(tmp_path, rc):
    """The `.env`'s secrets are still masked, and nothing fails, when `.glitchtiprc` has no DSN
    or one that is not valid: masking must never be the reason a command fails."""
    secret = "Vq3Lw8Zr1Xc5Nb7Mk2Pj"
    (tmp_path / ".env").write_text(f"SECRET_KEY={secret}\n")
    (tmp_path / ".env").chmod(0o600)
    (tmp_path / ".glitchtiprc").write_text(rc)
    assert set(secrets_of(tmp_path)) == {secret}  # (found as the kit's and by its name)
    compose = Deployment(load_settings(tmp_path, {}, environ={}), ("dc",)).compose()
    assert compose.redact(f"key {secret} and {KEY}") == f"key {MASK} and {KEY}"


def test_the_dsn_key_of_a_valid_glitchtiprc_is_masked_beside_the_env_secrets(tmp_path):
    secret = "Vq3Lw8Zr1Xc5Nb7Mk2Pj"
    (tmp_path / ".env").write_text(f"SECRET_KEY={secret}\n")
    (tmp_path / ".env").chmod(0o600)
    (tmp_path / ".glitchtiprc").write_text(f"[defaults]\nurl = http://{KEY}@localhost:8000/1\n")
    assert set(secrets_of(tmp_path)) == {secret, KEY}


@pytest.mark.parametrize(
    ("url", "masked", "passwords"),
    [
        (
            "postgres://u:one@h/g?sslmode=require&password=two&PASSWORD=three",
            f"postgres://u:{MASK}@h/g?sslmode=require&password={MASK}&PASSWORD={MASK}",
            ["one", "two", "three"],
        ),
        ("postgres://u@h/g", "postgres://u@h/g", []),  # a user without a password
        ("u:pw@h:5432/g", f"u:{MASK}@h:5432/g", ["pw"]),  # no scheme: still the userinfo's
        ("redis://h/0?password=&db=1", "redis://h/0?password=&db=1", []),  # empty: nothing
        ("redis://:s3cret@h:6379/0#frag", f"redis://:{MASK}@h:6379/0#frag", ["s3cret"]),
        ("postgres://u:a#b/c?d@h/g", f"postgres://u:{MASK}@h/g", ["a#b/c?d"]),
        ("postgres://u:p:q@h/g", f"postgres://u:{MASK}@h/g", ["p:q"]),
        ("postgres://u:p@s@h/g", f"postgres://u:{MASK}@h/g", ["p@s"]),  # up to the last '@'
        ("u:p@s@h/g", f"u:{MASK}@h/g", ["p@s"]),
        (
            "redis://h/0?Password=x#y&password=z",
            f"redis://h/0?Password={MASK}#y&password={MASK}",
            ["x", "z"],
        ),
        (
            "postgres://h/g?xpassword=no&password=yes",
            f"postgres://h/g?xpassword=no&password={MASK}",
            ["yes"],
        ),
        ("not a url at all", "not a url at all", []),
    ],
)
def test_url_passwords_and_their_masked_url_whole(url, masked, passwords):
    """Each password form a client reads (userinfo, `password=` in any case, ended by `&` or
    `#`) is found as written and masked in place; everything else of the URL stays."""
    assert (mask_url_password(url), url_passwords(url)) == (masked, passwords)
