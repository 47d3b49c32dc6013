"""GlitchTip 5's /code/app.py (copied there by the Dockerfile for the 5 stand-in): the
all-in-one process of bin/run-all-in-one.sh."""

import sys

from standin.cli import main

if __name__ == "__main__":
    sys.exit(main(["all-in-one"]))
