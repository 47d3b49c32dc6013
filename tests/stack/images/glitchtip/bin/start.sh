#!/bin/sh
# GlitchTip's ./bin/start.sh (the image's CMD).
# 6: SERVER_ROLE (default web) picks the script, as 6's start.sh does: web -> the web server,
# worker | worker_with_beat -> bin/run-worker.sh, all_in_one -> bin/run-all-in-one.sh; web with
# GLITCHTIP_EMBED_WORKER=true counts as all_in_one; any other role exits 1.
# 5: the web server (6 serves on 8000; 5 on $PORT, 8080, or 8000 with granian/uvicorn).
set -e
if [ "${GLITCHTIP_STANDIN_MAJOR:-6}" -ge 6 ]; then
    SERVER_ROLE="${SERVER_ROLE:-web}"
    if [ "$SERVER_ROLE" = "web" ] && [ "${GLITCHTIP_EMBED_WORKER}" = "true" ]; then
        SERVER_ROLE="all_in_one"
    fi
    case "$SERVER_ROLE" in
        web) ;;
        worker | worker_with_beat) exec ./bin/run-worker.sh ;;
        all_in_one) exec ./bin/run-all-in-one.sh ;;
        *)
            echo "Unknown server role provided: $SERVER_ROLE. Should be web|worker|all_in_one."
            exit 1
            ;;
    esac
fi
exec python3 -m standin web
