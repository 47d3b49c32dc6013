"""The runtime adapters: the only modules that run Compose, the Docker CLI or talk to the engine.

compose (Compose bound to a deployment, output redacted), engine (the Docker SDK), docker (the
`docker` CLI, secrets redacted), streams (bytes through `compose exec -T`), compose_binary
(locating Compose v2) and compose_check (`docker compose config`); process holds the one result
type of a finished child process.
"""
