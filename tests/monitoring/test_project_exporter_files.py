"""config.json and the token file as the exporter reads them: a file that is not UTF-8 text is
one line and exit 2, never a traceback in the container's log."""

from __future__ import annotations

from provision.monitoring import project_exporter as pe


def test_a_config_that_is_not_utf8_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"api_url": "http://web:8000", "organization": "acme\xe9"}')
    assert pe.main(["--config", str(path)]) == 2
    assert capsys.readouterr() == (
        "",
        f"error: {path} is not valid JSON: it is not UTF-8 text\n",
    )


def test_a_config_in_utf8_with_a_non_ascii_organization_is_refused_by_name(tmp_path, capsys):
    """The same text written in UTF-8 is read, and refused for what it says."""
    path = tmp_path / "config.json"
    path.write_text('{"api_url": "http://web:8000", "organization": "acmé"}', encoding="utf-8")
    assert pe.main(["--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"error: {path}: organization must be an organization slug, not 'acmé'\n"
    )


def test_an_answer_longer_than_the_cap_is_refused_after_the_cap_without_waiting_for_the_rest(
    tmp_path,
):
    """The exporter reads at most MAX_BODY_BYTES + 1 bytes of an answer: whatever answers at
    GlitchTip's address (a proxy's error page streamed forever, a wrong service) costs it 8 MiB
    at most. Here the server announces more than it sends and holds the connection: the
    exporter refuses the answer once the cap is passed, instead of waiting for the rest until
    its timeout (not recorded from GlitchTip, whose answers are small JSON)."""
    import json
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    release = threading.Event()
    sent = pe.MAX_BODY_BYTES + 1

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                request += chunk
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {sent + 1024}\r\n\r\n"
            )
            connection.sendall(head.encode() + b" " * sent)
            release.wait(timeout=30)  # the rest never comes while the client reads

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    config_path = tmp_path / "config.json"
    config_path.write_text(
        json.dumps({"api_url": f"http://127.0.0.1:{port}", "organization": "acme"})
    )
    config = pe.load_config(str(config_path))
    exporter = pe.Exporter(config, "not-a-token-1", spread_seconds=0.0)
    api = pe.Api(config, "not-a-token-1", exporter.requests, timeout=5.0)
    refused: tuple[str, str] | None = None
    try:
        try:
            api.get("/api/0/organizations/acme/projects/")
        except pe.ApiFailure as failure:
            refused = (str(failure), failure.code)
    finally:
        release.set()
        server.join(timeout=10)
        listener.close()
    assert refused == (
        f"GET /api/0/organizations/acme/projects/ answered more than {pe.MAX_BODY_BYTES} bytes",
        "200",
    )


def test_a_token_without_the_read_scopes_is_said_with_its_fix(tmp_path):
    """GlitchTip answers 403 to a token lacking the scope of the call (the fake's scope check,
    as recorded for the API): the poll's error names the scopes to give."""
    from fakeglitchtip import create_api_token, start_fake
    from project_exporter_world import ADMIN, ORG, make_world, write_config

    handle = start_fake(keep_alive=False, latency=0.002)
    try:
        make_world(handle)
        weak = create_api_token(handle.store, ADMIN, ["event:read"], "weak")
        config = pe.load_config(str(write_config(tmp_path, handle.url, weak)))
        result = pe.Exporter(config, weak, spread_seconds=0.0).poll()
    finally:
        handle.stop()
    assert (result.ok, result.error) == (
        False,
        f"GET /api/0/organizations/{ORG}/projects/ answered 403: "
        "the API token lacks scope org:read or project:read",
    )


def test_a_host_header_glitchtip_does_not_allow_is_said_with_its_fix(tmp_path):
    """Django answers 400 to a Host outside ALLOWED_HOSTS (the fake runs the same check)."""
    from fakeglitchtip import start_fake
    from project_exporter_world import ORG, make_world, write_config

    handle = start_fake(keep_alive=False, latency=0.002, allowed_hosts=("glitchtip.example.com",))
    try:
        world = make_world(handle)
        path = write_config(tmp_path, handle.url, world.token, host_header="other.example.com")
        config = pe.load_config(str(path))
        result = pe.Exporter(config, world.token, spread_seconds=0.0).poll()
    finally:
        handle.stop()
    assert (result.ok, result.error) == (
        False,
        f"GET /api/0/organizations/{ORG}/projects/ answered 400: GlitchTip refused the Host "
        "header: set host_header to a host in its ALLOWED_HOSTS",
    )
