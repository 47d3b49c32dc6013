"""`provision proxy-ca`: export the TLS proxy's internal CA root for clients and SDKs."""

from __future__ import annotations

import click

from provision.commands.options import dir_option, echo_json, json_option, settings_options


@click.command("proxy-ca")
@dir_option
@settings_options
@json_option("{path, changed, why}")
def proxy_ca_command(directory, overrides, as_json):
    """Write the proxy's internal CA root to certs/glitchtip-ca.crt.

    For a private or local name (.test, .local, .internal, an IP address, a name without a dot)
    the proxy's certificate comes from Caddy's own CA; clients must trust its root. `provision
    up` exports it too. A public name has an ACME certificate and needs nothing.

    \b
    Examples:
      provision proxy-ca
      SSL_CERT_FILE=certs/glitchtip-ca.crt python app.py        # Python SDK, urllib3
      sentry_sdk.init(dsn, ca_certs="certs/glitchtip-ca.crt")   # or in code
      NODE_EXTRA_CA_CERTS=certs/glitchtip-ca.crt node app.js
      curl --cacert certs/glitchtip-ca.crt https://glitchtip.test/_health/
    """

    from provision.proxy.ca import export_root
    from provision.stack.context import StackContext

    ctx = StackContext(directory=directory, overrides=overrides)
    result = export_root(ctx.load_settings(), ctx.compose())
    if as_json:
        echo_json(result)
    elif result["path"] is None:
        click.echo(f"nothing to export: {result['why']}")
    else:
        state = "written" if result["changed"] else "unchanged"
        click.echo(f"{result['path']}: {state} (the root of the proxy's internal CA)")
