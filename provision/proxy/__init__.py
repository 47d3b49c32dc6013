"""The TLS front door: a Caddy proxy in front of GlitchTip's web service.

`names` decides whether the proxy runs and which certificate authority signs its certificate
(ACME for a public name, Caddy's internal CA for a private one), and pins the proxy's address
so GlitchTip trusts forwarded headers from it alone; `caddyfile` renders its configuration;
`ca` exports the internal CA's root for clients and SDKs; `certificate` reads the served
certificate's expiry for `provision status`.
"""
