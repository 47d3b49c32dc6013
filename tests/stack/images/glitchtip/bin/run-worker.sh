#!/bin/sh
# GlitchTip 6's ./bin/run-worker.sh: `./manage.py runworker --scheduler` processes ingested
# events (the process's command line contains "runworker", as the real one's does).
set -e
exec ./manage.py runworker --scheduler
