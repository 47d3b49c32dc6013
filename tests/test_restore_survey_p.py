"""Issue 20, part p: the settings a restore checks before anything changes are loaded with the
deployment's environment (the context's `environ`), not the process's."""

from __future__ import annotations

from test_ops_restore import OLD_DB, archive, deployment, started  # noqa: F401 (fixtures)

from provision.ops.restore import restore_backup


def test_the_restore_checks_the_planned_settings_against_the_deployments_environment(
    tmp_path,
    archive,  # noqa: F811
    started,  # noqa: F811
    monkeypatch,
):
    """A variable of the process running the library, which the context leaves out, does not
    refuse the restore (with the process's environment it would: not a port)."""
    path, _ = archive
    _target, compose, ctx = deployment(tmp_path, "new", b"", b"", tables=0)
    monkeypatch.setenv("GLITCHTIP_KIT_HTTP_PORT", "not-a-port")
    result = restore_backup(ctx, path, verify=False)
    assert result.pre_restore_backup is None
    assert (compose.state_dir / "db.bin").read_bytes() == OLD_DB
    assert started == [1]
