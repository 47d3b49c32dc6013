"""Pull: make every image of the stack present locally, touching the network only if needed.

Images already in the engine are never pulled again (so test images and images brought in with
`docker load` work offline); the others are pulled with `compose pull`, one image at a time and
with progress. When a pull fails, the error names the image and the two ways to supply it: an
image override pointing at a reachable mirror, or `docker load -i FILE`.
"""

from __future__ import annotations

import time
from typing import Any

from provision.errors import KitError
from provision.stack.context import StackContext
from provision.steps import StepOutcome

# Progress lines that are noise when repeated every few milliseconds.
_CHATTY = ("Downloading", "Extracting", "Waiting", "Verifying Checksum", "Pulling fs layer")


def images_of(services: dict[str, dict]) -> dict[str, list[str]]:
    """image -> the services using it, in service order."""
    images: dict[str, list[str]] = {}
    for name, spec in services.items():
        image = spec.get("image")
        if image:
            images.setdefault(image, []).append(name)
    return images


def override_hint(settings: Any, image: str) -> str:
    """How to supply `image` when it cannot be pulled: the override setting, or `docker load`."""
    from provision.settings import SPECS

    for spec in SPECS:
        if spec.name.endswith("_image") and getattr(settings, spec.name, None) == image:
            return (
                f"set {spec.env} (or {spec.name} in glitchtip.yaml) to a mirror's copy, "
                "or load it with `docker load -i FILE`"
            )
    return "point its image setting at a mirror's copy, or load it with `docker load -i FILE`"


class _Throttle:
    """Pass status lines through, chatty progress lines at most every `interval` seconds."""

    def __init__(self, note, interval: float = 2.0) -> None:
        self.note = note
        self.interval = interval
        self.last = 0.0

    def __call__(self, line: str) -> None:
        if not line.strip():
            return
        now = time.monotonic()
        if any(word in line for word in _CHATTY) and now - self.last < self.interval:
            return
        self.last = now
        self.note(line.strip())


def pull(ctx: StackContext) -> StepOutcome:
    """Pull the images that are missing (or all with `--pull always`; none with `never`)."""
    settings = ctx.load_settings()
    compose = ctx.compose()
    engine = ctx.engine()
    images = images_of(ctx.services())
    if ctx.pull_policy == "always":
        wanted = list(images)
    else:
        wanted = [image for image in images if not engine.image_present(image)]
    if not wanted:
        return StepOutcome(f"all {len(images)} images present locally", changed=False)
    if ctx.pull_policy == "never":
        image = wanted[0]
        raise KitError(
            f"image {image} is not present locally and --pull never was given",
            override_hint(settings, image),
        )
    for index, image in enumerate(wanted):
        ctx.note(f"pulling {image}")
        service = images[image][0]
        result = compose.stream("pull", service, on_line=_Throttle(ctx.note))
        if not result.ok:
            # An air-gapped operator wants the whole list of what to bring, not one at a time.
            rest = wanted[index + 1 :]
            also = f"; also missing locally: {', '.join(rest)}" if rest else ""
            raise KitError(
                f"cannot pull image {image} ({result.last_lines(1) or 'registry unreachable'})",
                override_hint(settings, image) + also,
            )
    return StepOutcome(
        f"pulled {len(wanted)} of {len(images)} images ({', '.join(wanted)})", changed=True
    )
