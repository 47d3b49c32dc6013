#!/usr/bin/env python3
"""Django's manage.py; like GlitchTip's, it only setdefaults DJANGO_SETTINGS_MODULE."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "glitchtip.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
