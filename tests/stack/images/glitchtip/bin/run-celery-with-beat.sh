#!/usr/bin/env bash
# GlitchTip 5's ./bin/run-celery-with-beat.sh, line for line in what reaches Celery: the four
# CELERY_WORKER_* assignments have no `export`, so a default below stays a shell variable and
# Celery (click's auto_envvar_prefix "CELERY") never sees it: Celery runs its own defaults
# (prefork, concurrency = CPUs, prefetch 4). A variable that was already in the container's
# environment (compose `environment:`) stays exported and does reach Celery. The stand-in's
# `celery` reads the same variables the same way (standin/cli.py _worker_environ).
export IS_CELERY="true"
export CELERY_SKIP_CHECKS="true"

CELERY_WORKER_POOL="${CELERY_WORKER_POOL:-'threads'}"
CELERY_WORKER_CONCURRENCY="${CELERY_WORKER_CONCURRENCY:-10}"
CELERY_WORKER_PREFETCH_MULTIPLIER="${CELERY_WORKER_PREFETCH_MULTIPLIER:-11}"
CELERY_WORKER_MAX_TASKS_PER_CHILD="${CELERY_WORKER_MAX_TASKS_PER_CHILD:-10000}"

set -e

exec python3 -m standin celery -A glitchtip worker -l info -B -s /tmp/celerybeat-schedule
