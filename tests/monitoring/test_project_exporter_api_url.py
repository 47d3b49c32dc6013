"""The exporter's `api_url`: GlitchTip over http (the Compose network's http://web:8000, what the
kit renders) or over https (a GlitchTip reached through its TLS proxy or another host), its
trailing slash dropped; any other scheme, a URL without a host or with a query is refused with
the one line that names the form expected."""

from __future__ import annotations

import pytest

from provision.monitoring import project_exporter as pe


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("http://web:8000", "http://web:8000"),
        ("https://glitchtip.example.com/", "https://glitchtip.example.com"),
        (
            " https://glitchtip.example.com:8443/glitchtip/ ",
            "https://glitchtip.example.com:8443/glitchtip",
        ),
    ],
)
def test_an_http_or_https_api_url_is_accepted_without_its_trailing_slash(given, kept):
    assert pe.parse_config({"api_url": given, "organization": "acme"}).api_url == kept


@pytest.mark.parametrize(
    "given", ["ftp://glitchtip.example.com", "https://", "https://glitchtip.example.com/?a=1"]
)
def test_another_scheme_no_host_or_a_query_is_refused_whole(given):
    with pytest.raises(pe.ConfigError) as refused:
        pe.parse_config({"api_url": given, "organization": "acme"})
    shown = given.rstrip("/")
    assert str(refused.value) == (
        f"api_url must be an http(s) URL such as http://web:8000, not {shown!r}"
    )
