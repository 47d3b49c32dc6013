#!/bin/sh
# Test-only: GlitchTip's ./bin/run-migrate.sh failing halfway, as a broken release's migration
# would: the stand-in's migrations run, then one more is recorded as applied (the database IS
# changed, so a rollback must restore it), then the next statement fails and the script exits 1.
python3 -m standin migrate || exit $?
python3 - <<'PY' || exit $?
from standin import config, pgstore

conn = pgstore.connect(config.database_dsn(), wait=10)
with conn, conn.cursor() as cur:
    cur.execute(
        "INSERT INTO glitchtip_standin_migrations (name) VALUES ('9999_failmigrate')"
        " ON CONFLICT DO NOTHING"
    )
conn.close()
print("  Applying standin.9999_failmigrate... OK")
PY
echo 'django.db.utils.ProgrammingError: column "standin_failmigrate" does not exist' >&2
exit 1
