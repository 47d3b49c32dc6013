"""A stand-in for `docker compose` in the fast ops tests: a real child process streaming bytes.

Backup and restore move data through `compose exec -T` / `compose run -T` pipes; this script
answers those argv shapes from files in a state directory, so the kit's streaming code runs for
real (pipes, chunks, exit codes, stderr) without Docker:

  db.bin        what `pg_dump` prints and what `pg_restore` reads into (the "database")
  uploads.tar   the uploads volume
  state.json    {"postgres": "running", "server_major": 17, "tables": 3, "fail": {...}}
  calls.log     one line per invocation (the argv after the compose files), for the order

`state.json` may also hold {"services": {"web": {"State": "running", "Health": "unhealthy"}}}: rows
`ps` prints beside postgres's. `pg_restore` refuses input that is no custom-format dump. `fail`:
{"pg_dump": N} prints N bytes then exits 1 with a message on stderr, like a dump that dies midway;
{"pg_restore": true} exits 1 after reading part of its input; {"up": true} makes `up` fail with
postgres unhealthy, {"up": "no-image"} before any container exists; {"uploads_restore": true}
makes the uploads' untar fail (exit 2, GNU tar's lines for a full volume, the volume unchanged).
`logs` prints state["logs"].
`down` removes the containers (postgres "absent") and refuses an option it lacks or a name that is
no service (Compose's wording there is not recorded); `run -t` passes its output through a
pseudo-TTY (LF -> CR LF), and the uploads' untar with `-t` is refused, its input being a pipe
("the input device is not a TTY", as Compose says when stdin is no terminal). pg_dump,
pg_restore and psql refuse an option they lack, more arguments
than they take (pg_restore any file name: it would read that file, and the container has none,
instead of its stdin), and a role or database the compose file does not create; pg_restore without
`-d` prints a script instead of restoring (as the real one does); {"app_database": false} is the
app's database dropped (as between restore's DROP and CREATE). Volumes: state["volumes"] lists this
project's volumes on the engine (default: the postgres volume when a postgres container or a
database exists); `up` creates it, `volumes --quiet` lists them ({"compose_volumes": false}: a
Compose older than 2.23, which has no `volumes`), `down` removes the containers and, with
`--volumes`, the volumes.
Run as: python ops_fake_compose.py STATE_DIR ARGS... (`compose_binary(state_dir)` in ops_fakes
writes an executable that does, for GLITCHTIP_KIT_COMPOSE: then the kit's own `Compose` runs it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CHUNK = 1 << 16
# A custom-format dump (pg_dump -Fc, what backups hold) starts with these bytes; real pg_restore
# refuses any other input before touching the database.
DUMP_MAGIC = b"PGDMP"


SERVICES = {
    "postgres": {"environment": {"POSTGRES_USER": "glitchtip", "POSTGRES_DB": "glitchtip"}},
    "web": {"volumes": [{"type": "volume", "source": "uploads", "target": "/code/uploads"}]},
    "worker": {},
    "migrate": {},
}


def _strip_globals(args: list[str]) -> list[str]:
    """Drop the `-f FILE` and `--project-name NAME` the kit's Compose puts first."""
    while args and args[0] in ("-f", "--project-name", "--project-directory"):
        args = args[2:]
    return args


# `compose run` options that take a value (the kit's argv uses these); any other `-x` is a flag.
_RUN_VALUE_OPTIONS = {
    "--entrypoint", "-v", "--volume", "-e", "--env", "-w", "--workdir", "-u", "--user",
    "--cap-add",
}  # fmt: skip


def _run_options(args: list[str]) -> list[str]:
    """The OPTIONS of `run [OPTIONS] SERVICE [COMMAND...]` (before the service)."""
    rest, options = args[1:], []
    while rest and rest[0].startswith("-"):
        taken = 2 if rest[0] in _RUN_VALUE_OPTIONS else 1
        options, rest = options + rest[:taken], rest[taken:]
    return options


def _run_service(args: list[str]) -> str:
    """The SERVICE of `run [OPTIONS] SERVICE [COMMAND...]`."""
    rest = args[1 + len(_run_options(args)) :]
    return rest[0] if rest else ""


def _through_tty(args: list[str], data: bytes) -> bytes:
    """What `run` hands its caller of `data`: with `-t`/`--tty` (Compose's "Allocate a
    pseudo-TTY") the output passes a terminal, whose ONLCR setting turns each LF into CR LF (as
    `docker run -t` does to a binary stream); `-T` (--no-TTY) leaves the bytes as they are."""
    if {"-t", "--tty"} & set(_run_options(args)):
        return data.replace(b"\n", b"\r\n")
    return data


# The client tools' options the real ones take (PostgreSQL 17's reference pages; the short options
# taking a value, the flags, the long options): any other option is refused as getopt refuses it,
# and the role and database must be the compose file's (or `postgres`, the maintenance database).
# getopt's exact wording is not recorded from a real container; the refusal's shape is glibc's.
_TOOL_OPTIONS = {
    "pg_dump": ("dfFhjnNpStTUZeE", "abBcCOsvwWx", {"--format", "--no-password", "--no-owner"}),
    "pg_restore": (
        "dfFhIjLnNpPStTU",
        "acCeOsvwWx1l",
        {"--exit-on-error", "--no-owner", "--no-privileges", "--no-password", "--format"},
    ),
    "psql": ("cdfhpUvoPFRTL", "AtXqeEabnsSwWxz01H", {"--no-password", "--no-psqlrc"}),
}


# pg_dump [dbname], pg_restore [filename], psql [dbname [username]]
_POSITIONAL = {"pg_dump": 1, "pg_restore": 1, "psql": 2}


def _tool_refusal(tool: str, tool_args: list[str], state: dict) -> str | None:
    """stderr of `tool` refusing `tool_args` (an unknown option, a role or database that does
    not exist: the app's database is gone between a `DROP DATABASE` and its `CREATE`, or when
    state["app_database"] is false), or None when it would run."""
    values, flags, longs = _TOOL_OPTIONS[tool]
    role, database = "postgres", None
    rest = list(tool_args[1:])
    positional: list[str] = []
    while rest:
        option = rest.pop(0)
        if not option.startswith("-"):
            positional.append(option)
            continue
        if option.startswith("--"):
            if option.split("=", 1)[0] not in longs:
                return f"{tool}: unrecognized option '{option}'"
        elif option.startswith("-") and len(option) == 2 and option[1] in values:
            if not rest:
                return f"{tool}: option requires an argument -- '{option[1]}'"
            value = rest.pop(0)
            role = value if option == "-U" else role
            database = value if option == "-d" else database
        elif option.startswith("-") and not all(flag in flags for flag in option[1:]):
            wrong = next(flag for flag in option[1:] if flag not in flags)
            return f"{tool}: invalid option -- '{wrong}'"
    if len(positional) > _POSITIONAL[tool]:
        extra = positional[_POSITIONAL[tool]]
        return f'{tool}: error: too many command-line arguments (first is "{extra}")'
    if tool == "pg_restore" and positional:  # it reads that file instead of stdin: none here
        return (
            f'pg_restore: error: could not open input file "{positional[0]}": '
            "No such file or directory"
        )
    if tool == "pg_restore" and database is None:
        return None  # a script on stdout, the database untouched (main() handles it)
    environment = SERVICES["postgres"]["environment"]
    if role != environment["POSTGRES_USER"]:
        return f'{tool}: error: connection to server failed: FATAL:  role "{role}" does not exist'
    databases = {"postgres"} | (
        {environment["POSTGRES_DB"]} if state.get("app_database", True) else set()
    )
    if (database or role) not in databases:
        return (
            f"{tool}: error: connection to server failed: FATAL:  database "
            f'"{database or role}" does not exist'
        )
    return None


def _tar_refusal(args: list[str]) -> str | None:
    """What GNU tar in the throw-away container says to `tar ARGS` when it does not archive the
    mounted uploads volume: `-C` to a directory that is not the volume's mount, or an operand
    other than `.` (tar cannot stat it there), else None."""
    mounts = [args[i + 1].split(":")[1] for i, arg in enumerate(args[:-1]) if arg == "-v"]
    rest = args[args.index(_run_service(args)) + 1 :]
    directory, operands = "/", []
    while rest:
        arg = rest.pop(0)
        if arg == "-C" and rest:
            directory = rest.pop(0)
        elif arg == "-cf" and rest:
            rest.pop(0)  # the archive: - (stdout)
        elif not arg.startswith("-"):
            operands.append(arg)
    if directory not in mounts:
        return f"tar: {directory}: Cannot open: No such file or directory"
    wrong = [operand for operand in operands if operand != "."]
    if wrong or not operands:
        name = wrong[0] if wrong else "(nothing)"
        return f"tar: {name}: Cannot stat: No such file or directory"
    return None


POSTGRES_VOLUME = "x_postgres-data"


def _volumes(state: dict) -> list[str]:
    """The project's volumes: as recorded, else the postgres volume where a database is."""
    if "volumes" in state:
        return list(state["volumes"])
    exists = state.get("postgres") not in (None, "absent") or bool(state.get("tables"))
    return [POSTGRES_VOLUME] if exists else []


def main() -> int:
    state_dir = Path(sys.argv[1])
    args = _strip_globals(sys.argv[2:])
    if args == ["version", "--short"]:
        print("2.40.3")
        return 0
    state = json.loads((state_dir / "state.json").read_text())
    with open(state_dir / "calls.log", "a") as log:
        log.write(" ".join(args) + "\n")
    fail = state.get("fail", {})
    out = sys.stdout.buffer
    if args[:3] == ["exec", "-T", "postgres"]:
        if state.get("postgres") != "running":
            sys.stderr.write("service postgres is not running\n")
            return 1
        tool_args = args[6:] if args[3:5] == ["sh", "-c"] else args[3:]
        tool = tool_args[0]
        if "--version" in tool_args:
            print(f"{tool} (PostgreSQL) {state.get('tool_major', 17)}.4 (Debian)")
            return 0
        refusal = _tool_refusal(tool, tool_args, state) if tool in _TOOL_OPTIONS else None
        if refusal is not None:
            sys.stderr.write(refusal + "\n")
            return 1
        if tool == "pg_dump":
            data = (state_dir / "db.bin").read_bytes()
            limit = fail.get("pg_dump")
            for start in range(0, len(data), CHUNK):
                if limit is not None and start >= limit:
                    sys.stderr.write("pg_dump: error: connection to server lost\n")
                    return 1
                out.write(data[start : start + CHUNK])
            return 0
        if tool == "pg_restore" and "-d" not in tool_args:  # no database: a script to stdout
            sys.stdin.buffer.read()
            out.write(b"--\n-- PostgreSQL database dump\n--\n")
            return 0
        if tool == "pg_restore":
            received = bytearray()
            first = sys.stdin.buffer.read(len(DUMP_MAGIC))
            if first != DUMP_MAGIC:  # pg_restore reads the archive header before anything
                sys.stderr.write(
                    "pg_restore: error: input file does not appear to be a valid archive\n"
                )
                return 1
            received += first
            while chunk := sys.stdin.buffer.read(CHUNK):
                received += chunk
                if fail.get("pg_restore"):
                    sys.stderr.write("pg_restore: error: could not execute query\n")
                    return 1
            (state_dir / "db.bin").write_bytes(bytes(received))
            return 0
        if tool == "psql":
            sql = tool_args[tool_args.index("-c") + 1]
            if sql.startswith("SHOW server_version_num"):
                print(state.get("server_major", 17) * 10000 + 4)
            elif "FROM pg_database" in sql:
                print(1 if state.get("app_database", True) else 0)
            elif "pg_tables" in sql:
                print(state.get("tables", 0))
            elif sql.startswith(("DROP DATABASE", "CREATE DATABASE")):
                state["tables"] = 0
                state["app_database"] = sql.startswith("CREATE")
                (state_dir / "state.json").write_text(json.dumps(state))
            return 0
    if args[:1] == ["run"] and _run_service(args) not in SERVICES:
        sys.stderr.write(f"no such service: {_run_service(args)}\n")  # as Compose refuses it
        return 1
    if args[:1] == ["run"] and "tar" in args and "-cf" in args:
        problem = _tar_refusal(args)
        if problem:
            sys.stderr.write(problem + "\n")
            return 2
        out.write(_through_tty(args, (state_dir / "uploads.tar").read_bytes()))
        return 0
    if args[:1] == ["run"] and "web" in args and "-c" in args:
        if {"-t", "--tty"} & set(_run_options(args)) and not sys.stdin.isatty():
            # Compose asked for a TTY with its input a pipe (the archive's uploads): refused
            # before the container starts, in the docker CLI's words (docker/compose#13228).
            sys.stderr.write("the input device is not a TTY\n")
            return 1
        data = sys.stdin.buffer.read()
        if fail.get("uploads_restore"):  # GNU tar's lines when the volume is full
            sys.stderr.write(
                "tar: ./a/b.png: Cannot write: No space left on device\n"
                "tar: Exiting with failure status due to previous errors\n"
            )
            return 2
        (state_dir / "uploads.tar").write_bytes(data)
        return 0
    if args[:1] == ["ps"]:
        # One JSON object per line, as Compose >= 2.21 prints; Health is "" without a check.
        rows = {}
        if state.get("postgres") != "absent":
            rows["postgres"] = {"State": state.get("postgres"), "Health": "healthy"}
        rows.update(state.get("services", {}))
        for service, row in rows.items():
            print(json.dumps({"Service": service, "State": "running", "Health": "", **row}))
        return 0
    if args[:1] == ["config"]:
        if "--format" in args:  # Compose's config takes yaml or json only
            given = (args[args.index("--format") + 1 :] or ["?"])[0]
            if given not in ("yaml", "json"):
                sys.stderr.write(f"unsupported format {given!r}\n")
                return 1
        print(json.dumps({"services": SERVICES, "volumes": {"uploads": {"name": "x_uploads"}}}))
        return 0
    if args[:1] == ["volumes"]:
        if not state.get("compose_volumes", True):
            sys.stderr.write('unknown docker command: "compose volumes"\n')
            return 1
        if args[1:] != ["--quiet"]:
            sys.stderr.write(f"ops_fake_compose: unexpected volumes flags {args[1:]}\n")
            return 2
        for name in _volumes(state):
            print(name)
        return 0
    if args[:1] == ["down"]:
        # `down [OPTIONS] [SERVICES...]`: an option it lacks or a name that is no service is
        # refused before anything is removed (Compose's "unknown flag", "no such service");
        # else the containers go, and with `--volumes` the project's volumes.
        options = [arg for arg in args[1:] if arg.startswith("-")]
        named = [arg for arg in args[1:] if not arg.startswith("-")]
        lacking = [option for option in options if option not in ("--remove-orphans", "--volumes")]
        if lacking:
            sys.stderr.write(f"unknown flag: {lacking[0]}\n")
            return 1
        unknown = [name for name in named if name not in SERVICES]
        if unknown:
            sys.stderr.write(f"no such service: {unknown[0]}\n")
            return 1
        state["volumes"] = [] if "--volumes" in options else _volumes(state)
        state["postgres"] = "absent"
        state.pop("services", None)
        (state_dir / "state.json").write_text(json.dumps(state))
        return 0
    if args[:1] == ["up"]:
        # Compose makes the project's volumes before its containers (the no-image failure
        # below comes at "Container ... Creating"), so every `up` leaves the postgres volume.
        state["volumes"] = sorted({*_volumes(state), POSTGRES_VOLUME})
        (state_dir / "state.json").write_text(json.dumps(state))
        if fail.get("up") == "no-image":  # `--pull never` and no image: no container is made
            sys.stderr.write(" Container x-postgres-1  Creating\n")
            sys.stderr.write("Error response from daemon: No such image: postgres:19.1\n")
            return 1
        if fail.get("up"):  # `up --wait` with a service whose health check keeps failing
            state.setdefault("services", {})["postgres"] = {"Health": "unhealthy"}
            (state_dir / "state.json").write_text(json.dumps(state))
            sys.stderr.write("dependency failed to start: container x-postgres-1 is unhealthy\n")
            return 1
        state["postgres"] = "running"
        (state_dir / "state.json").write_text(json.dumps(state))
        return 0
    if args[:1] == ["logs"]:
        print(state.get("logs", ""))
        return 0
    if args[:1] == ["run"] and _run_service(args) == "migrate":
        # run-migrate.sh starts with Django's `migrate`, which always prints its plan: these
        # are Django's own heading lines (GlitchTip's full output is not recorded here).
        print("Operations to perform:\n  Apply all migrations: admin, auth\nRunning migrations:")
        print("  No migrations to apply.")
        return 0
    if args[:1] in (["stop"], ["run"]):
        return 0
    sys.stderr.write(f"ops_fake_compose: unexpected {args}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
