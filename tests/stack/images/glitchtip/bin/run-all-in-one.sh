#!/bin/sh
# GlitchTip's ./bin/run-all-in-one.sh: web and worker in one process.
# 6: the init (migrate, maintain_partitions, createcachetable) unless SKIP_INIT is true, then the
#    web server with the worker embedded (GLITCHTIP_EMBED_WORKER=true).
# 5: `exec python app.py` (app.py runs migrate itself, then worker, beat and uvicorn on 8000).
set -e
if [ "${GLITCHTIP_STANDIN_MAJOR:-6}" -lt 6 ]; then
    exec python app.py
fi
case "${SKIP_INIT:-}" in
    true | True | 1) ;;
    *) python3 -m standin migrate ;;
esac
export GLITCHTIP_EMBED_WORKER=true
exec python3 -m standin all-in-one
