"""The load test: real SDK traffic against a GlitchTip deployment, and what it held.

`payloads` builds the requests SDKs send (stdlib only, shared with the Locust container);
`locustfile` is what Locust runs; `options` validates what the operator asks for (durations,
targets, the mix); `measure` counts what GlitchTip stored and how long its queue took to drain;
`report` reads Locust's CSV; `run` drives one headless run through `compose.locust.yml`.
"""
