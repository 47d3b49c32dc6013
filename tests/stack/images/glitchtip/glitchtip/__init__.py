"""The stand-in's `glitchtip` package: only what a settings module of the kit's imports."""
