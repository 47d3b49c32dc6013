"""Docker Swarm: GlitchTip as a stack (`--target swarm`).

The same settings and template partials as the Compose deployment render `stack.swarm.yml`;
secrets become Swarm secrets created from `.env` (versioned names, since Swarm secrets cannot
change); `provision up --target swarm` deploys the migrate job first and waits for it, then web
and worker with rolling, healthcheck-driven updates. `scale`, `status` and `down` work on the
stack through the `docker` CLI (`docker stack`, `docker service`, `docker secret`).
"""
