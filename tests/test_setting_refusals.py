"""Every refusal of the settings' parsers, compared whole: the problem and the fix a user reads
when a value in glitchtip.yaml, an option or the environment is refused, and the value an
accepted one becomes.

One row per branch of each parser (accepted forms, each refusal, the masking of passwords, the
cut of long values). Tests elsewhere check most of these refusals with a substring or through a
command; a word changed or dropped from the message ("XX" + message + "XX", a `None` fix, the
value shown replaced) passed them. The rows were written from the parsers' documented rules and
each message read for sense; a row that changes is a message a user now reads differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from provision.settings import base, external, mail, metrics, parsers, tls, urls
from provision.settings.base import Invalid


@dataclass(frozen=True)
class Accepted:
    value: object


@dataclass(frozen=True)
class Refused:
    problem: str
    fix: str


ROWS = [
    (
        base.shown,
        ("a" * 58,),
        Accepted("'" + "a" * 58 + "'"),
    ),
    (
        base.shown,
        ("a" * 59,),
        Accepted("'" + "a" * 54 + "...' (59 characters)"),
    ),
    (
        base.shown,
        (7,),
        Accepted("'7'"),
    ),
    (
        base.shown,
        ("x" * 10000000,),
        Accepted("'" + "x" * 54 + "...' (10000000 characters)"),
    ),
    (
        parsers.parse_bool,
        (True,),
        Accepted(True),
    ),
    (
        parsers.parse_bool,
        (" Yes ",),
        Accepted(True),
    ),
    (
        parsers.parse_bool,
        ("OFF",),
        Accepted(False),
    ),
    (
        parsers.parse_bool,
        ("0",),
        Accepted(False),
    ),
    (
        parsers.parse_bool,
        ("1",),
        Accepted(True),
    ),
    (
        parsers.parse_bool,
        ("maybe",),
        Refused(
            "'maybe' is not a yes/no value",
            "use true or false",
        ),
    ),
    (
        parsers.parse_bool,
        ("",),
        Refused(
            "'' is not a yes/no value",
            "use true or false",
        ),
    ),
    (
        parsers.parse_bool,
        (2,),
        Refused(
            "'2' is not a yes/no value",
            "use true or false",
        ),
    ),
    (
        parsers.parse_major,
        ("6",),
        Accepted(6),
    ),
    (
        parsers.parse_major,
        (5,),
        Accepted(5),
    ),
    (
        parsers.parse_major,
        ("7",),
        Refused(
            "GlitchTip 7 is not supported",
            "use 5 or 6",
        ),
    ),
    (
        parsers.parse_major,
        ("100",),
        Refused(
            "100 is out of range",
            "use a whole number from 0 to 99",
        ),
    ),
    (
        parsers.parse_major,
        ("six",),
        Refused(
            "'six' is not a GlitchTip major",
            "use a whole number from 0 to 99",
        ),
    ),
    (
        parsers.parse_major,
        (True,),
        Refused(
            "'True' is not a GlitchTip major",
            "use a whole number from 0 to 99",
        ),
    ),
    (
        parsers.ascii_host,
        ("Bücher.Example.",),
        Accepted("xn--bcher-kva.example"),
    ),
    (
        parsers.ascii_host,
        ("glitchtip.example.com.",),
        Accepted("glitchtip.example.com"),
    ),
    (
        parsers.ascii_host,
        ("10.0.0.1",),
        Accepted("10.0.0.1"),
    ),
    (
        parsers.ascii_host,
        ("::1",),
        Accepted("::1"),
    ),
    (
        parsers.ascii_host,
        ("-bad.example",),
        Refused(
            "'-bad.example' is not a valid host name",
            ("use a host name of letters, digits, '-' and '.', e.g. glitch" + "tip.example.com"),
        ),
    ),
    (
        parsers.ascii_host,
        ("a_b.example",),
        Refused(
            "'a_b.example' is not a valid host name",
            ("use a host name of letters, digits, '-' and '.', e.g. glitch" + "tip.example.com"),
        ),
    ),
    (
        parsers.ascii_host,
        ("a" * 64 + ".example",),
        Refused(
            "'" + "a" * 54 + "...' (72 characters) is not a valid host name",
            ("use a host name of letters, digits, '-' and '.', e.g. glitch" + "tip.example.com"),
        ),
    ),
    (
        parsers.ascii_host,
        ("a" * 63 + "." + "a" * 63 + "." + "a" * 63 + "." + "a" * 63 + ".a",),
        Refused(
            "'" + "a" * 54 + "...' (257 characters) is not a valid host name",
            ("use a host name of letters, digits, '-' and '.', e.g. glitch" + "tip.example.com"),
        ),
    ),
    (
        parsers.ascii_host,
        ("☃☃.example",),
        Refused(
            (
                "'☃☃.example' is not a valid internationalized host name (emo"
                + "ji and symbols cannot be encoded)"
            ),
            ("use a host name of letters, digits, '-' and '.', e.g. glitch" + "tip.example.com"),
        ),
    ),
    (
        parsers.ascii_host,
        ("bad host",),
        Refused(
            "'bad host' is not a valid host name",
            ("use a host name of letters, digits, '-' and '.', e.g. glitch" + "tip.example.com"),
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://GlitchTip.Example.com/",),
        Accepted("https://glitchtip.example.com"),
    ),
    (
        parsers.parse_public_url,
        ("http://[::1]:8000",),
        Accepted("http://[::1]:8000"),
    ),
    (
        parsers.parse_public_url,
        ("https://Bücher.example:8443",),
        Accepted("https://xn--bcher-kva.example:8443"),
    ),
    (
        parsers.parse_public_url,
        ("ftp://x.example",),
        Refused(
            "'ftp://x.example' is not an http(s) URL",
            "use the URL users open, e.g. https://glitchtip.example.com",
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://",),
        Refused(
            "'https://' has no valid host",
            "use the URL users open, e.g. https://glitchtip.example.com",
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://user:pw@x.example",),
        Refused(
            "'https://user:********@x.example' has no valid host",
            "use the URL users open, e.g. https://glitchtip.example.com",
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://x.example/path",),
        Refused(
            "'https://x.example/path' has a path, query or fragment",
            "use the URL users open, e.g. https://glitchtip.example.com (" + "no path)",
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://x.example?q=1",),
        Refused(
            "'https://x.example?q=1' has a path, query or fragment",
            "use the URL users open, e.g. https://glitchtip.example.com (" + "no path)",
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://x.example#f",),
        Refused(
            "'https://x.example#f' has a path, query or fragment",
            "use the URL users open, e.g. https://glitchtip.example.com (" + "no path)",
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://x.example:99999",),
        Refused(
            "'https://x.example:99999' has an invalid port",
            "use the URL users open, e.g. https://glitchtip.example.com",
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://x.example:0",),
        Refused(
            "'https://x.example:0' has port 0, which no server listens on",
            "use the URL users open, e.g. https://glitchtip.example.com",
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://bad_host.example",),
        Refused(
            "'https://bad_host.example': 'bad_host.example' is not a vali" + "d host name",
            "use the URL users open, e.g. https://glitchtip.example.com",
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://[::1",),
        Refused(
            "'https://[::1' is not a valid URL",
            "use the URL users open, e.g. https://glitchtip.example.com",
        ),
    ),
    (
        parsers.parse_public_url,
        ("https://x.example:80 ",),
        Accepted("https://x.example:80"),
    ),
    (
        parsers.parse_public_url,
        ("https://x$.example",),
        Refused(
            "'https://x$.example' contains spaces, quotes or '$'",
            "use the URL users open, e.g. https://glitchtip.example.com",
        ),
    ),
    (
        parsers.parse_ip,
        ("[::1]",),
        Accepted("::1"),
    ),
    (
        parsers.parse_ip,
        (" 0.0.0.0 ",),
        Accepted("0.0.0.0"),
    ),
    (
        parsers.parse_ip,
        ("localhost",),
        Refused(
            "'localhost' is not an IP address",
            (
                "use 127.0.0.1 (this host only, behind a reverse proxy) or 0."
                + "0.0.0 (all interfaces)"
            ),
        ),
    ),
    (
        parsers.parse_ip,
        ("256.1.1.1",),
        Refused(
            "'256.1.1.1' is not an IP address",
            (
                "use 127.0.0.1 (this host only, behind a reverse proxy) or 0."
                + "0.0.0 (all interfaces)"
            ),
        ),
    ),
    (
        parsers.parse_image,
        ("registry.local:5000/postgres:17.7",),
        Accepted("registry.local:5000/postgres:17.7"),
    ),
    (
        parsers.parse_image,
        ("postgres@sha256:" + "a" * 64,),
        Accepted("postgres@sha256:" + "a" * 64),
    ),
    (
        parsers.parse_image,
        ("postgres",),
        Refused(
            "'postgres' has no tag",
            "pin a version tag (name:tag) or a digest",
        ),
    ),
    (
        parsers.parse_image,
        ("postgres:latest",),
        Refused(
            "'postgres:latest' is not pinned",
            "use a version tag instead of latest",
        ),
    ),
    (
        parsers.parse_image,
        ("postgres:latest@sha256:" + "b" * 64,),
        Accepted("postgres:latest@sha256:" + "b" * 64),
    ),
    (
        parsers.parse_image,
        ("Postgres:17",),
        Refused(
            "'Postgres:17' is not an image reference",
            "use name:tag, e.g. registry.local/postgres:17.7",
        ),
    ),
    (
        parsers.parse_image,
        ("",),
        Refused(
            "'' is not an image reference",
            "use name:tag, e.g. registry.local/postgres:17.7",
        ),
    ),
    (
        parsers.parse_image,
        ("a/b:c d",),
        Refused(
            "'a/b:c d' is not an image reference",
            "use name:tag, e.g. registry.local/postgres:17.7",
        ),
    ),
    (
        parsers.image_tag_major,
        ("postgres:17.7",),
        Accepted(17),
    ),
    (
        parsers.image_tag_major,
        ("glitchtip:v5.1.0",),
        Accepted(5),
    ),
    (
        parsers.image_tag_major,
        ("x:6-alpine",),
        Accepted(6),
    ),
    (
        parsers.image_tag_major,
        ("x:stable",),
        Accepted(None),
    ),
    (
        parsers.image_tag_major,
        ("x",),
        Accepted(None),
    ),
    (
        parsers.image_tag_major,
        ("X:1",),
        Accepted(None),
    ),
    (
        parsers.image_tag_major,
        ("x:17a",),
        Accepted(None),
    ),
    (
        parsers.parse_name,
        ("Acme",),
        Accepted("Acme"),
    ),
    (
        parsers.parse_name,
        (" Web App ",),
        Accepted("Web App"),
    ),
    (
        parsers.parse_name,
        ("",),
        Refused(
            "'' is not a usable name",
            "use 1-64 printable characters, no quotes",
        ),
    ),
    (
        parsers.parse_name,
        ("x" * 65,),
        Refused(
            "'" + "x" * 54 + "...' (65 characters) is not a usable name",
            "use 1-64 printable characters, no quotes",
        ),
    ),
    (
        parsers.parse_name,
        ("a'b",),
        Refused(
            '"a\'b" is not a usable name',
            "use 1-64 printable characters, no quotes",
        ),
    ),
    (
        parsers.parse_name,
        ("a$b",),
        Refused(
            "'a$b' is not a usable name",
            "use 1-64 printable characters, no quotes",
        ),
    ),
    (
        parsers.parse_name,
        ("a\\b",),
        Refused(
            "'a\\\\b' is not a usable name",
            "use 1-64 printable characters, no quotes",
        ),
    ),
    (
        parsers.parse_name,
        ('a"b',),
        Refused(
            "'a\"b' is not a usable name",
            "use 1-64 printable characters, no quotes",
        ),
    ),
    (
        parsers.parse_name,
        ("tab\there",),
        Refused(
            "'tab\\there' is not a usable name",
            "use 1-64 printable characters, no quotes",
        ),
    ),
    (
        parsers.parse_name,
        ("---",),
        Refused(
            ("'---' has no letter or digit GlitchTip can make a slug (its " + "URL name) from"),
            "use a name with ASCII letters or digits, e.g. Acme or web-ap" + "p",
        ),
    ),
    (
        parsers.parse_name,
        ("Ünïcode",),
        Accepted("Ünïcode"),
    ),
    (
        parsers.parse_slug,
        ("web-app_1",),
        Accepted("web-app_1"),
    ),
    (
        parsers.parse_slug,
        ("-web",),
        Refused(
            "'-web' is not a valid name",
            "use lowercase letters, digits, - and _",
        ),
    ),
    (
        parsers.parse_slug,
        ("Web",),
        Refused(
            "'Web' is not a valid name",
            "use lowercase letters, digits, - and _",
        ),
    ),
    (
        parsers.parse_slug,
        ("a" * 63,),
        Accepted("a" * 63),
    ),
    (
        parsers.parse_slug,
        ("a" * 64,),
        Refused(
            "'" + "a" * 54 + "...' (64 characters) is not a valid name",
            "use lowercase letters, digits, - and _",
        ),
    ),
    (
        parsers.parse_slug,
        ("",),
        Refused(
            "'' is not a valid name",
            "use lowercase letters, digits, - and _",
        ),
    ),
    (
        parsers.parse_platform,
        ("python",),
        Accepted("python"),
    ),
    (
        parsers.parse_platform,
        ("node.js",),
        Accepted("node.js"),
    ),
    (
        parsers.parse_platform,
        ("Python",),
        Refused(
            "'Python' is not a platform",
            "use e.g. python, javascript, node",
        ),
    ),
    (
        parsers.parse_platform,
        ("",),
        Refused(
            "'' is not a platform",
            "use e.g. python, javascript, node",
        ),
    ),
    (
        parsers.parse_platform,
        ("a" * 65,),
        Refused(
            "'" + "a" * 54 + "...' (65 characters) is not a platform",
            "use e.g. python, javascript, node",
        ),
    ),
    (
        parsers.parse_platform,
        ("-x",),
        Refused(
            "'-x' is not a platform",
            "use e.g. python, javascript, node",
        ),
    ),
    (
        parsers.parse_abs_path,
        ("/var/lib/postgresql/",),
        Accepted("/var/lib/postgresql"),
    ),
    (
        parsers.parse_abs_path,
        ("/",),
        Accepted("/"),
    ),
    (
        parsers.parse_abs_path,
        ("//",),
        Accepted("/"),
    ),
    (
        parsers.parse_abs_path,
        ("relative",),
        Refused(
            "'relative' is not an absolute container path",
            "use e.g. /var/lib/postgresql",
        ),
    ),
    (
        parsers.parse_abs_path,
        ("/a b",),
        Refused(
            "'/a b' is not an absolute container path",
            "use e.g. /var/lib/postgresql",
        ),
    ),
    (
        parsers.parse_abs_path,
        ("/a:b",),
        Refused(
            "'/a:b' is not an absolute container path",
            "use e.g. /var/lib/postgresql",
        ),
    ),
    (
        parsers.parse_abs_path,
        ("/a$b",),
        Refused(
            "'/a$b' is not an absolute container path",
            "use e.g. /var/lib/postgresql",
        ),
    ),
    (
        external.parse_database_url,
        ("",),
        Accepted(""),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@db.example.com:5432/gt",),
        Accepted("postgres://u:p@db.example.com:5432/gt"),
    ),
    (
        external.parse_database_url,
        ("mysql://u:p@db/x",),
        Refused(
            "'mysql://u:********@db/x' is not a Postgres URL",
            "use e.g. postgres://glitchtip:password@db.example.com:5432/g" + "litchtip",
        ),
    ),
    (
        external.parse_database_url,
        ("db.example.com/x",),
        Refused(
            "'db.example.com/x' is not a Postgres URL",
            "use e.g. postgres://glitchtip:password@db.example.com:5432/g" + "litchtip",
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@db.example.com/",),
        Refused(
            (
                "'postgres://u:********@db.example.com/' names no database (t"
                + "he path after the host)"
            ),
            "use e.g. postgres://glitchtip:password@db.example.com:5432/g" + "litchtip",
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@db.example.com/a/b",),
        Refused(
            (
                "'postgres://u:********@db.example.com/a/b' names no database"
                + " (the path after the host)"
            ),
            "use e.g. postgres://glitchtip:password@db.example.com:5432/g" + "litchtip",
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@db.example.com/gt?sslmode=require",),
        Accepted("postgres://u:p@db.example.com/gt?sslmode=require"),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@db.example.com/gt?sslmode=on",),
        Refused(
            (
                "'postgres://u:********@db.example.com/gt?sslmode=on': sslmod"
                + "e='on' is not a libpq mode"
            ),
            "use one of disable, allow, prefer, require, verify-ca, verif" + "y-full",
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p w@db/gt",),
        Refused(
            "'postgres://u:********@db/gt' contains spaces, quotes or bac" + "kslashes",
            "use e.g. postgres://glitchtip:password@db.example.com:5432/g" + "litchtip",
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:pä@db/gt",),
        Refused(
            "'postgres://u:********@db/gt' has non-ASCII characters",
            (
                "use e.g. postgres://glitchtip:password@db.example.com:5432/g"
                + "litchtip (percent-encode them)"
            ),
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p#x@db/gt",),
        Refused(
            (
                "'postgres://u:********@db/gt': the user name or password con"
                + "tains '#', which ends the server part of a URL"
            ),
            "percent-encode it (# as %23) in DATABASE_URL",
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@db:99999/gt",),
        Refused(
            (
                "'postgres://u:********@db:99999/gt' is not a valid Postgres "
                + "URL (bad address or port)"
            ),
            "use e.g. postgres://glitchtip:password@db.example.com:5432/g" + "litchtip",
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@:5432/gt",),
        Refused(
            "'postgres://u:********@:5432/gt' names no Postgres server",
            "use e.g. postgres://glitchtip:password@db.example.com:5432/g" + "litchtip",
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@localhost/gt",),
        Refused(
            (
                "'postgres://u:********@localhost/gt': localhost is the conta"
                + "iner's own loopback, not this host's"
            ),
            (
                "use an address GlitchTip's containers can reach (the server'"
                + "s name or IP; for a server on this host, the address of its "
                + "docker0 bridge or of the host)"
            ),
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@127.0.0.2/gt",),
        Refused(
            (
                "'postgres://u:********@127.0.0.2/gt': 127.0.0.2 is the conta"
                + "iner's own loopback, not this host's"
            ),
            (
                "use an address GlitchTip's containers can reach (the server'"
                + "s name or IP; for a server on this host, the address of its "
                + "docker0 bridge or of the host)"
            ),
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@[::1]/gt",),
        Refused(
            (
                "'postgres://u:********@[::1]/gt': ::1 is the container's own"
                + " loopback, not this host's"
            ),
            (
                "use an address GlitchTip's containers can reach (the server'"
                + "s name or IP; for a server on this host, the address of its "
                + "docker0 bridge or of the host)"
            ),
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@x.localhost/gt",),
        Refused(
            (
                "'postgres://u:********@x.localhost/gt': x.localhost is the c"
                + "ontainer's own loopback, not this host's"
            ),
            (
                "use an address GlitchTip's containers can reach (the server'"
                + "s name or IP; for a server on this host, the address of its "
                + "docker0 bridge or of the host)"
            ),
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@0.0.0.0/gt",),
        Refused(
            (
                "'postgres://u:********@0.0.0.0/gt': 0.0.0.0 is the container"
                + "'s own loopback, not this host's"
            ),
            (
                "use an address GlitchTip's containers can reach (the server'"
                + "s name or IP; for a server on this host, the address of its "
                + "docker0 bridge or of the host)"
            ),
        ),
    ),
    (
        external.parse_database_url,
        ("postgres://u:p@[::]/gt",),
        Refused(
            (
                "'postgres://u:********@[::]/gt': :: is the container's own l"
                + "oopback, not this host's"
            ),
            (
                "use an address GlitchTip's containers can reach (the server'"
                + "s name or IP; for a server on this host, the address of its "
                + "docker0 bridge or of the host)"
            ),
        ),
    ),
    (
        external.parse_sslmode,
        ("",),
        Accepted(""),
    ),
    (
        external.parse_sslmode,
        (" Require ",),
        Accepted("require"),
    ),
    (
        external.parse_sslmode,
        ("on",),
        Refused(
            "'on' is not a TLS mode",
            "use one of disable, allow, prefer, require, verify-ca, verif" + "y-full",
        ),
    ),
    (
        external.parse_valkey_url,
        ("",),
        Accepted(""),
    ),
    (
        external.parse_valkey_url,
        ("redis://:pw@valkey:6379/0",),
        Accepted("redis://:pw@valkey:6379/0"),
    ),
    (
        external.parse_valkey_url,
        ("valkeys://valkey/15",),
        Accepted("valkeys://valkey/15"),
    ),
    (
        external.parse_valkey_url,
        ("http://valkey",),
        Refused(
            "'http://valkey' is not a Valkey URL",
            "use e.g. redis://:password@valkey.example.com:6379/0 (rediss" + ":// for TLS)",
        ),
    ),
    (
        external.parse_valkey_url,
        ("redis://valkey/16",),
        Refused(
            "'redis://valkey/16': '16' is not a database number",
            "end the URL with /0 .. /15, or nothing",
        ),
    ),
    (
        external.parse_valkey_url,
        ("redis://valkey/x",),
        Refused(
            "'redis://valkey/x': 'x' is not a database number",
            "end the URL with /0 .. /15, or nothing",
        ),
    ),
    (
        external.parse_valkey_url,
        ("redis://valkey/a/b",),
        Refused(
            "'redis://valkey/a/b': 'a/b' is not a database number",
            "end the URL with /0 .. /15, or nothing",
        ),
    ),
    (
        external.parse_bucket,
        ("",),
        Accepted(""),
    ),
    (
        external.parse_bucket,
        ("my.bucket-1",),
        Accepted("my.bucket-1"),
    ),
    (
        external.parse_bucket,
        ("ab",),
        Refused(
            "'ab' is not an S3 bucket name",
            "use 3 to 63 lower-case letters, digits, dots and hyphens",
        ),
    ),
    (
        external.parse_bucket,
        ("Bucket",),
        Refused(
            "'Bucket' is not an S3 bucket name",
            "use 3 to 63 lower-case letters, digits, dots and hyphens",
        ),
    ),
    (
        external.parse_bucket,
        ("-bucket",),
        Refused(
            "'-bucket' is not an S3 bucket name",
            "use 3 to 63 lower-case letters, digits, dots and hyphens",
        ),
    ),
    (
        external.parse_endpoint_url,
        ("",),
        Accepted(""),
    ),
    (
        external.parse_endpoint_url,
        ("https://s3.example.com/",),
        Accepted("https://s3.example.com"),
    ),
    (
        external.parse_endpoint_url,
        ("s3.example.com",),
        Refused(
            "'s3.example.com' is not an http(s) URL",
            "https://s3.example.com or http://minio:9000",
        ),
    ),
    (
        external.parse_endpoint_url,
        ("https://k:s@s3.example.com",),
        Refused(
            "'https://k:********@s3.example.com' holds credentials",
            ("remove them; set uploads_access_key_id and uploads_secret_ac" + "cess_key instead"),
        ),
    ),
    (
        external.parse_endpoint_url,
        ("https://s3.example.com:0x",),
        Refused(
            "'https://s3.example.com:0x' is not a valid S3 URL (bad addre" + "ss or port)",
            "use e.g. https://s3.example.com or http://minio:9000",
        ),
    ),
    (
        external.parse_region,
        ("",),
        Accepted(""),
    ),
    (
        external.parse_region,
        ("eu-central-1",),
        Accepted("eu-central-1"),
    ),
    (
        external.parse_region,
        ("EU",),
        Refused(
            "'EU' is not an S3 region",
            "use e.g. eu-central-1 or us-east-1",
        ),
    ),
    (
        external.parse_region,
        ("a",),
        Refused(
            "'a' is not an S3 region",
            "use e.g. eu-central-1 or us-east-1",
        ),
    ),
    (
        external.parse_region,
        ("a" * 41,),
        Refused(
            "'" + "a" * 41 + "' is not an S3 region",
            "use e.g. eu-central-1 or us-east-1",
        ),
    ),
    (
        external.parse_access_key,
        ("",),
        Accepted(""),
    ),
    (
        external.parse_access_key,
        ("AKIA.x_y-z",),
        Accepted("AKIA.x_y-z"),
    ),
    (
        external.parse_access_key,
        ("ab",),
        Refused(
            ("the access key id has characters outside letters, digits, '." + "', '_' and '-'"),
            "copy it again from your storage provider",
        ),
    ),
    (
        external.parse_access_key,
        ("a b c",),
        Refused(
            ("the access key id has characters outside letters, digits, '." + "', '_' and '-'"),
            "copy it again from your storage provider",
        ),
    ),
    (
        external.parse_access_key,
        ("a" * 129,),
        Refused(
            ("the access key id has characters outside letters, digits, '." + "', '_' and '-'"),
            "copy it again from your storage provider",
        ),
    ),
    (
        external.parse_secret_access_key,
        ("",),
        Accepted(""),
    ),
    (
        external.parse_secret_access_key,
        ("abc/def+ghi=",),
        Accepted("abc/def+ghi="),
    ),
    (
        external.parse_secret_access_key,
        ("a b",),
        Refused(
            (
                "the secret access key has spaces, quotes, '$', backslashes o"
                + "r non-ASCII characters"
            ),
            "copy it again from your storage provider",
        ),
    ),
    (
        external.parse_secret_access_key,
        ("ä",),
        Refused(
            (
                "the secret access key has spaces, quotes, '$', backslashes o"
                + "r non-ASCII characters"
            ),
            "copy it again from your storage provider",
        ),
    ),
    (
        external.parse_secret_access_key,
        ("a$b",),
        Refused(
            (
                "the secret access key has spaces, quotes, '$', backslashes o"
                + "r non-ASCII characters"
            ),
            "copy it again from your storage provider",
        ),
    ),
    (
        external.parse_secret_access_key,
        ("a" * 257,),
        Refused(
            (
                "the secret access key has spaces, quotes, '$', backslashes o"
                + "r non-ASCII characters"
            ),
            "copy it again from your storage provider",
        ),
    ),
    (
        mail.parse_email,
        ("Name@Example.com",),
        Accepted("Name@Example.com"),
    ),
    (
        mail.parse_email,
        ("x@bücher.example",),
        Accepted("x@xn--bcher-kva.example"),
    ),
    (
        mail.parse_email,
        ("ü@bücher.example",),
        Refused(
            "'ü@bücher.example' is not an e-mail address",
            "use name@example.com",
        ),
    ),
    (
        mail.parse_email,
        ("x@☃☃.example",),
        Refused(
            "'x@☃☃.example' is not an e-mail address",
            "use name@example.com",
        ),
    ),
    (
        mail.parse_email,
        ("x@localhost",),
        Accepted("x@localhost"),
    ),
    (
        mail.parse_email,
        ("x@single",),
        Refused(
            "'x@single' is not an e-mail address",
            "use name@example.com",
        ),
    ),
    (
        mail.parse_email,
        ("not an address",),
        Refused(
            "'not an address' is not an e-mail address",
            "use name@example.com",
        ),
    ),
    (
        mail.parse_from_email,
        ("g@example.com",),
        Accepted("g@example.com"),
    ),
    (
        mail.parse_from_email,
        ("GlitchTip <g@bücher.example>",),
        Accepted("GlitchTip <g@xn--bcher-kva.example>"),
    ),
    (
        mail.parse_from_email,
        ("Glitch\x07Tip <g@example.com>",),
        Refused(
            "'Glitch\\x07Tip <g@example.com>' has unprintable characters i" + "n its name",
            "use glitchtip@example.com or 'GlitchTip <glitchtip@example.c" + "om>'",
        ),
    ),
    (
        mail.parse_from_email,
        ("Bad <nope>",),
        Refused(
            "'Bad <nope>' is not an e-mail address",
            "use glitchtip@example.com or 'GlitchTip <glitchtip@example.c" + "om>'",
        ),
    ),
    (
        mail.parse_from_email,
        ("nope",),
        Refused(
            "'nope' is not an e-mail address",
            "use glitchtip@example.com or 'GlitchTip <glitchtip@example.c" + "om>'",
        ),
    ),
    (
        mail.parse_from_email,
        ("A\ud800B <g@example.com>",),
        Refused(
            "'A\\ud800B <g@example.com>' has unprintable characters in its" + " name",
            "use glitchtip@example.com or 'GlitchTip <glitchtip@example.c" + "om>'",
        ),
    ),
    (
        mail.parse_email_url,
        ("consolemail://",),
        Accepted("consolemail://"),
    ),
    (
        mail.parse_email_url,
        ("smtp+tls://u:p@mail.example.com:587",),
        Accepted("smtp+tls://u:p@mail.example.com:587"),
    ),
    (
        mail.parse_email_url,
        ("http://mail",),
        Refused(
            "'http://mail' is not an e-mail URL",
            "use e.g. smtp+tls://user:password@mail.example.com:587 or co" + "nsolemail://",
        ),
    ),
    (
        mail.parse_email_url,
        ("smtp://u p@mail",),
        Refused(
            "'smtp://u p@mail' contains spaces, quotes or backslashes",
            "use e.g. smtp+tls://user:password@mail.example.com:587 or co" + "nsolemail://",
        ),
    ),
    (
        mail.parse_email_url,
        ("smtp://u:p#@mail",),
        Refused(
            (
                "'smtp://u:********@mail': the user name or password contains"
                + " '#', which ends the server part of a URL"
            ),
            "percent-encode it (# as %23) in EMAIL_URL or --set email_url" + "=...",
        ),
    ),
    (
        mail.parse_email_url,
        ("smtp://u:pä@mail",),
        Refused(
            "'smtp://u:********@mail' has non-ASCII characters",
            (
                "use e.g. smtp+tls://user:password@mail.example.com:587 or co"
                + "nsolemail:// (percent-encode them)"
            ),
        ),
    ),
    (
        mail.parse_email_url,
        ("smtp://[mail",),
        Refused(
            "'smtp://[mail' is not a valid URL",
            "use e.g. smtp+tls://user:password@mail.example.com:587 or co" + "nsolemail://",
        ),
    ),
    (
        mail.parse_email_url,
        ("smtp://mail:99999",),
        Refused(
            "'smtp://mail:99999' has an invalid port",
            "use e.g. smtp+tls://user:password@mail.example.com:587 or co" + "nsolemail://",
        ),
    ),
    (
        mail.parse_email_url,
        ("smtp://",),
        Refused(
            "'smtp://' names no mail server",
            "use e.g. smtp+tls://user:password@mail.example.com:587 or co" + "nsolemail://",
        ),
    ),
    (
        mail.parse_email_url,
        ("filemail://",),
        Accepted("filemail://"),
    ),
    (
        mail.parse_email_url,
        ("SMTP://mail",),
        Accepted("SMTP://mail"),
    ),
    (
        tls.parse_optional_email,
        (None,),
        Accepted(""),
    ),
    (
        tls.parse_optional_email,
        ("",),
        Accepted(""),
    ),
    (
        tls.parse_optional_email,
        ("  ",),
        Accepted(""),
    ),
    (
        tls.parse_optional_email,
        ("a@example.com",),
        Accepted("a@example.com"),
    ),
    (
        tls.parse_optional_email,
        ("a#b@example.com",),
        Refused(
            (
                "'a#b@example.com' holds '#', '{' or '}', which Caddy's confi"
                + "guration reads as syntax"
            ),
            "use an address without them",
        ),
    ),
    (
        tls.parse_optional_email,
        ("a{b}@example.com",),
        Refused(
            (
                "'a{b}@example.com' holds '#', '{' or '}', which Caddy's conf"
                + "iguration reads as syntax"
            ),
            "use an address without them",
        ),
    ),
    (
        tls.parse_optional_email,
        ("bad",),
        Refused(
            "'bad' is not an e-mail address",
            "use name@example.com",
        ),
    ),
    (
        tls.parse_proxy_subnet,
        ("10.203.7.0/29",),
        Accepted("10.203.7.0/29"),
    ),
    (
        tls.parse_proxy_subnet,
        ("10.203.7.1/29",),
        Refused(
            "'10.203.7.1/29' is not a subnet (address/prefix, host bits z" + "ero)",
            (
                "use a private IPv4 subnet of /29 or larger no other network "
                + "uses, e.g. 10.203.7.0/29"
            ),
        ),
    ),
    (
        tls.parse_proxy_subnet,
        ("10.0.0.0/30",),
        Refused(
            "'10.0.0.0/30' is not a private IPv4 subnet of /29 or larger",
            (
                "use a private IPv4 subnet of /29 or larger no other network "
                + "uses, e.g. 10.203.7.0/29"
            ),
        ),
    ),
    (
        tls.parse_proxy_subnet,
        ("8.8.8.0/24",),
        Refused(
            "'8.8.8.0/24' is not a private IPv4 subnet of /29 or larger",
            (
                "use a private IPv4 subnet of /29 or larger no other network "
                + "uses, e.g. 10.203.7.0/29"
            ),
        ),
    ),
    (
        tls.parse_proxy_subnet,
        ("fd00::/64",),
        Refused(
            "'fd00::/64' is not a private IPv4 subnet of /29 or larger",
            (
                "use a private IPv4 subnet of /29 or larger no other network "
                + "uses, e.g. 10.203.7.0/29"
            ),
        ),
    ),
    (
        tls.parse_proxy_subnet,
        ("127.0.0.0/29",),
        Refused(
            "'127.0.0.0/29' overlaps 127.0.0.0/8 (loopback)",
            (
                "use a private IPv4 subnet of /29 or larger no other network "
                + "uses, e.g. 10.203.7.0/29"
            ),
        ),
    ),
    (
        tls.parse_proxy_subnet,
        ("172.17.5.0/29",),
        Refused(
            "'172.17.5.0/29' overlaps 172.17.0.0/16 (Docker's default bri" + "dge, docker0)",
            (
                "use a private IPv4 subnet of /29 or larger no other network "
                + "uses, e.g. 10.203.7.0/29"
            ),
        ),
    ),
    (
        tls.parse_proxy_subnet,
        ("172.16.0.0/12",),
        Refused(
            "'172.16.0.0/12' overlaps 172.17.0.0/16 (Docker's default bri" + "dge, docker0)",
            (
                "use a private IPv4 subnet of /29 or larger no other network "
                + "uses, e.g. 10.203.7.0/29"
            ),
        ),
    ),
    (
        tls.parse_proxy_subnet,
        ("x",),
        Refused(
            "'x' is not a subnet (address/prefix, host bits zero)",
            (
                "use a private IPv4 subnet of /29 or larger no other network "
                + "uses, e.g. 10.203.7.0/29"
            ),
        ),
    ),
    (
        metrics.parse_retention,
        ("15d",),
        Accepted("15d"),
    ),
    (
        metrics.parse_retention,
        ("2h",),
        Accepted("2h"),
    ),
    (
        metrics.parse_retention,
        ("1h59m",),
        Refused(
            "'1h59m' is out of range",
            "use a Prometheus duration of 2h or more, e.g. 15d, 2w or 90d",
        ),
    ),
    (
        metrics.parse_retention,
        ("10y",),
        Accepted("10y"),
    ),
    (
        metrics.parse_retention,
        ("10y1s",),
        Refused(
            "'10y1s' is out of range",
            "use a Prometheus duration of 2h or more, e.g. 15d, 2w or 90d",
        ),
    ),
    (
        metrics.parse_retention,
        ("1d12h",),
        Accepted("1d12h"),
    ),
    (
        metrics.parse_retention,
        ("15 days",),
        Refused(
            "'15 days' is not a duration",
            "use a Prometheus duration of 2h or more, e.g. 15d, 2w or 90d",
        ),
    ),
    (
        metrics.parse_retention,
        ("",),
        Refused(
            "'' is not a duration",
            "use a Prometheus duration of 2h or more, e.g. 15d, 2w or 90d",
        ),
    ),
    (
        metrics.parse_retention,
        ("1000000d",),
        Refused(
            "'1000000d' is not a duration",
            "use a Prometheus duration of 2h or more, e.g. 15d, 2w or 90d",
        ),
    ),
    (
        metrics.budget_window_seconds,
        ("1h",),
        Accepted(3600),
    ),
    (
        metrics.budget_window_seconds,
        ("2d",),
        Accepted(172800),
    ),
    (
        metrics.budget_window_seconds,
        ("1w",),
        Accepted(604800),
    ),
    (
        metrics.budget_window_seconds,
        ("1m",),
        Refused(
            "'1m' is not a window",
            "use hours, days or weeks: 1h, 6h, 1d, 7d",
        ),
    ),
    (
        metrics.parse_error_budgets,
        (None,),
        Accepted({"default": {"max_errors": 200, "per": "1d"}}),
    ),
    (
        metrics.parse_error_budgets,
        ({},),
        Accepted({"default": {"max_errors": 200, "per": "1d"}}),
    ),
    (
        metrics.parse_error_budgets,
        ([],),
        Refused(
            "'[]' is not a mapping of projects",
            (
                "write it in glitchtip.yaml as `error_budgets:` then `  defau"
                + "lt: {max_errors: 200, per: 1d}` (one line per project slug)"
            ),
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_errors": 5, "per": "1h"}},),
        Accepted(
            {"default": {"max_errors": 200, "per": "1d"}, "web": {"max_errors": 5, "per": "1h"}}
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"default": {"max_errors": "10", "per": "41d"}},),
        Accepted({"default": {"max_errors": 10, "per": "41d"}}),
    ),
    (
        metrics.parse_error_budgets,
        ({True: {}},),
        Refused(
            "error_budgets: the key 'True' is not a project slug",
            (
                "use `default` or a project's slug as GlitchTip shows it in U"
                + "RLs (lowercase ASCII letters, digits, '-' and '_')"
            ),
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"Web App": {}},),
        Refused(
            "error_budgets: 'Web App' is not a project slug",
            (
                "GlitchTip's slug of 'Web App' is 'web-app': write that (use "
                + "`default` or a project's slug as GlitchTip shows it in URLs "
                + "(lowercase ASCII letters, digits, '-' and '_'))"
            ),
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": 3},),
        Refused(
            "error_budgets.web: '3' is not a budget",
            "write `web: {max_errors: 200, per: 1d}`",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_error": 1, "per": "1d"}},),
        Refused(
            "error_budgets.web: unknown key 'max_error'",
            "did you mean max_errors? a budget has max_errors and per onl" + "y",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"zzz": 1, "per": "1d"}},),
        Refused(
            "error_budgets.web: unknown key 'zzz'",
            "a budget has max_errors and per only",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"per": "1d"}},),
        Refused(
            "error_budgets.web: max_errors missing",
            "write `web: {max_errors: 200, per: 1d}`",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {}},),
        Refused(
            "error_budgets.web: max_errors and per missing",
            "write `web: {max_errors: 200, per: 1d}`",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_errors": 0, "per": "1d"}},),
        Refused(
            "error_budgets.web.max_errors: 0 is out of range",
            "use a whole number of errors from 1 to 1000000000, e.g. max_" + "errors: 200",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_errors": True, "per": "1d"}},),
        Refused(
            "error_budgets.web.max_errors: 'True' is not a number of erro" + "rs",
            "use a whole number of errors from 1 to 1000000000, e.g. max_" + "errors: 200",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_errors": 1.5, "per": "1d"}},),
        Refused(
            "error_budgets.web.max_errors: '1.5' is not a number of error" + "s",
            "use a whole number of errors from 1 to 1000000000, e.g. max_" + "errors: 200",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_errors": "x", "per": "1d"}},),
        Refused(
            "error_budgets.web.max_errors: 'x' is not a number of errors",
            "use a whole number of errors from 1 to 1000000000, e.g. max_" + "errors: 200",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_errors": 1, "per": "0h"}},),
        Refused(
            "error_budgets.web.per: 0h is out of range",
            "use whole hours, days or weeks from 1h to 41d, e.g. 1h, 6h, " + "1d, 7d or 30d",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_errors": 1, "per": "42d"}},),
        Refused(
            "error_budgets.web.per: 42d is out of range",
            "use whole hours, days or weeks from 1h to 41d, e.g. 1h, 6h, " + "1d, 7d or 30d",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_errors": 1, "per": "1m"}},),
        Refused(
            "error_budgets.web.per: '1m' is not a window",
            "use whole hours, days or weeks from 1h to 41d, e.g. 1h, 6h, " + "1d, 7d or 30d",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_errors": 1, "per": True}},),
        Refused(
            "error_budgets.web.per: 'True' is not a window",
            "use whole hours, days or weeks from 1h to 41d, e.g. 1h, 6h, " + "1d, 7d or 30d",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"web": {"max_errors": 1, "per": 5}},),
        Refused(
            "error_budgets.web.per: '5' is not a window",
            "use whole hours, days or weeks from 1h to 41d, e.g. 1h, 6h, " + "1d, 7d or 30d",
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({None: {}},),
        Refused(
            "error_budgets: the key 'None' is not a project slug",
            (
                "use `default` or a project's slug as GlitchTip shows it in U"
                + "RLs (lowercase ASCII letters, digits, '-' and '_')"
            ),
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"x" * 51: {}},),
        Refused(
            "error_budgets: '" + "x" * 51 + "' is not a project slug",
            (
                "GlitchTip's slug of '"
                + "x" * 51
                + "' is '"
                + "x" * 50
                + "': write that (use `default` or a project's slug as GlitchTi"
                + "p shows it in URLs (lowercase ASCII letters, digits, '-' and"
                + " '_'))"
            ),
        ),
    ),
    (
        metrics.parse_error_budgets,
        ({"!!!": {}},),
        Refused(
            "error_budgets: '!!!' is not a project slug",
            (
                "use `default` or a project's slug as GlitchTip shows it in U"
                + "RLs (lowercase ASCII letters, digits, '-' and '_')"
            ),
        ),
    ),
    (
        urls.refuse_breaking_userinfo,
        ("smtp://u:a/b@h", "W"),
        Refused(
            (
                "'smtp://u:********@h': the user name or password contains '/"
                + "', which ends the server part of a URL"
            ),
            "percent-encode it (/ as %2F) in W",
        ),
    ),
    (
        urls.refuse_breaking_userinfo,
        ("smtp://u:a?b@h", "W"),
        Refused(
            (
                "'smtp://u:********@h': the user name or password contains '?"
                + "', which ends the server part of a URL"
            ),
            "percent-encode it (? as %3F) in W",
        ),
    ),
    (
        urls.refuse_breaking_userinfo,
        ("smtp://u#x:p@h", "W"),
        Refused(
            (
                "'smtp://u#x:********@h': the user name or password contains "
                + "'#', which ends the server part of a URL"
            ),
            "percent-encode it (# as %23) in W",
        ),
    ),
    (
        urls.refuse_breaking_userinfo,
        ("smtp://u:p@h/a#b", "W"),
        Accepted(None),
    ),
    (
        urls.refuse_breaking_userinfo,
        ("x://y://u:p/q@h", "W"),
        Refused(
            (
                "'x://y:********@h': the user name or password contains '/', "
                + "which ends the server part of a URL"
            ),
            "percent-encode it (/ as %2F) in W",
        ),
    ),
    (
        urls.refuse_breaking_userinfo,
        ("smtp://u:pa#ss@mail.example.com:587/?next=http://x", "W"),
        Refused(
            (
                "'smtp://u:********@mail.example.com:587/?next=http://x': the"
                + " user name or password contains '#', which ends the server p"
                + "art of a URL"
            ),
            "percent-encode it (# as %23) in W",
        ),
    ),
]


def _outcome(function, args):
    try:
        return Accepted(function(*args))
    except Invalid as refused:
        return Refused(refused.problem, refused.fix)


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    ROWS,
    ids=[
        f"{row[0].__module__.rsplit('.', 1)[1]}.{row[0].__name__}-{index}"
        for index, row in enumerate(ROWS)
    ],
)
def test_parser_outcome_is_whole(function, args, expected):
    assert _outcome(function, args) == expected


def test_a_secret_is_never_in_its_refusal():
    """The secret access key's refusal names the kind of character only, never the value."""
    refused = _outcome(external.parse_secret_access_key, ("hunter2 secret",))
    assert "hunter2" not in refused.problem + refused.fix
