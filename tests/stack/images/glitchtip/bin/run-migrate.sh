#!/bin/sh
# GlitchTip's ./bin/run-migrate.sh: creates the stand-in's tables in $DATABASE_URL.
set -e
exec python3 -m standin migrate
