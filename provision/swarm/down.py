"""`provision down` for a Swarm stack: remove the stack, then the kit's secrets of it.

`docker stack rm` returns before the tasks are gone; the kit waits until no task of the stack is
left (volumes and networks are in use until then) so that `--volumes` and the secrets can go too.
Volumes live on the nodes that ran the tasks: only this node's are removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from provision.errors import KitError

WAIT_GONE = 120.0


def remove_stack(
    docker,
    stack: str,
    volumes: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Remove `stack`, its kit secrets and (with `volumes`) this node's volumes; lines to show."""
    from provision.swarm.secrets import remove_secrets, stale_secrets
    from provision.swarm.services import STACK_LABEL

    lines = []
    result = docker.run("stack", "rm", stack)
    if not result.ok and "nothing found" not in result.error_lines().lower():
        raise KitError(
            f"`docker stack rm {stack}` failed: {result.error_lines()}", "see `docker info`"
        )
    deadline = clock() + WAIT_GONE
    label = f"label={STACK_LABEL}={stack}"
    while True:
        left = docker.run("ps", "--all", "--quiet", "--filter", label).stdout.split()
        networks = docker.run("network", "ls", "--quiet", "--filter", label).stdout.split()
        if not left and not networks:
            break
        if clock() >= deadline:
            raise KitError(
                f"{len(left)} container(s) of stack {stack} still there after {WAIT_GONE:.0f} s",
                f"see `docker ps --all --filter {label}`, then run `provision down` again",
            )
        sleep(1.0)
    lines.append(f"stack {stack} removed")
    # `docker stack rm` removes the secrets labelled with the stack; any left over go here.
    remove_secrets(docker, stale_secrets(docker, stack, []))
    lines.append("its Swarm secrets removed (the next `up` creates them again from .env)")
    if volumes:
        names = docker.run("volume", "ls", "--quiet", "--filter", label).stdout.split()
        gone = [name for name in names if docker.run("volume", "rm", name).ok]
        lines.append(f"{len(gone)} volume(s) removed on this node: {', '.join(gone) or 'none'}")
    else:
        lines.append("volumes kept (`provision down --volumes` deletes them)")
    return lines
