"""The exporter's own Link header parser (it runs on GlitchTip's image, without the kit's
client), read whole on GlitchTip's recorded set-repr wrapper and on the forms it tolerates."""

from __future__ import annotations

import pytest

from provision.monitoring.project_exporter import parse_link_header

# GlitchTip's header as recorded (fixtures/113_issue_events_list.json): a Python set's repr.
RECORDED = (
    '{\'<http://127.0.0.1:8000/api/0/issues/22/events/>; rel="previous"; results="false", '
    '<http://127.0.0.1:8000/api/0/issues/22/events/>; rel="next"; results="false"\'}'
)
EVENTS = "http://127.0.0.1:8000/api/0/issues/22/events/"


@pytest.mark.parametrize(
    ("value", "links"),
    [
        (RECORDED, {"previous": {"url": EVENTS, "rel": "previous", "results": "false"},
                    "next": {"url": EVENTS, "rel": "next", "results": "false"}}),
        ("", {}),
        ('<http://h/x/?cursor=a>; rel="next"; results="true"; cursor="a"',  # RFC 8288's form
         {"next": {"url": "http://h/x/?cursor=a", "rel": "next", "results": "true",
                   "cursor": "a"}}),
        (" {'<http://h/x/?cursor=a>; rel=\"next\"; results=\"false\"'} ",
         {"next": {"url": "http://h/x/?cursor=a", "rel": "next", "results": "false"}}),
        ("'<http://h/x/>; rel=\"next\"",  # one quote only: not a wrapper, nothing stripped
         {"next": {"url": "http://h/x/", "rel": "next"}}),
        ('{<http://h/x/?cursor=b>; rel="next"}',  # braces alone: the first link kept whole
         {"next": {"url": "http://h/x/?cursor=b", "rel": "next"}}),
        ('<http://h/a/>; results="true", <http://h/b/>; rel="prev"',  # no rel: not a link
         {"prev": {"url": "http://h/b/", "rel": "prev"}}),
    ],
)  # fmt: skip
def test_link_headers_parse_whole(value, links) -> None:
    assert parse_link_header(value) == links
