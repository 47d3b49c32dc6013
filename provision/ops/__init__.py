"""Operating a deployment over the years: verify it works end to end, back it up, restore it.

`verify` checks a running deployment from the outside in (URL, health, database, token,
services, disk, an event through the DSN). `backup` writes one archive (database dump, uploads,
the deployment's files and a manifest with checksums); `restore` checks that archive before
touching anything and puts it back. `upgrade` builds on all three.
"""
