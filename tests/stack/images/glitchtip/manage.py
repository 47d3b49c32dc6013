#!/usr/bin/env python3
"""The stand-in's ./manage.py: createsuperuser --noinput, setup_advanced_partitions (5), ..."""

import sys

from standin.cli import main

sys.exit(main(["manage", *sys.argv[1:]]))
