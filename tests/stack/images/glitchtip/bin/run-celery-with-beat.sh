#!/bin/sh
# GlitchTip 5's ./bin/run-celery-with-beat.sh: the worker that processes ingested events. Its
# command line reads like the real `celery -A glitchtip worker -B` (healthchecks look for it).
set -e
exec python3 -m standin celery -A glitchtip worker -B -l info
