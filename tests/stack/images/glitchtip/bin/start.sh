#!/bin/sh
# GlitchTip's ./bin/start.sh (the image's CMD): the web server (6: port 8000; 5: $PORT, 8080).
set -e
exec python3 -m standin web
