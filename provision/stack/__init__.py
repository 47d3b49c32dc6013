"""`provision up` and the stack commands, one module per step.

`up.py` holds the ordered list of named steps (preflight, render, pull, start, migrate, partman,
admin, project, wrap-up); `runner.py` runs them with progress and elapsed times; `compose.py`
and `engine.py` are the two edges that talk to Docker. Every step is idempotent, so running
`provision up` again after a failure resumes where it stopped.
"""
