"""Both ends of every numeric setting: the lowest and highest accepted, one past each refused.

The bounds are written out here, not read from the parsers, so a loosened bound (`0` web
replicas accepted, a `0h` error-budget window) fails a test instead of passing its own check.
They are the kit's documented ranges (docs/settings.md's table, `provision config --help`).
"""

from __future__ import annotations

import pytest
from cli_run import run

from provision.settings import SPEC_BY_NAME, SPECS, Invalid, parse_error_budgets

# name -> (lowest accepted, highest accepted)
INT_BOUNDS = {
    "http_port": (1, 65535),
    "postgres_version": (1, 99),
    "retention_days": (1, 3650),
    "worker_concurrency": (1, 64),
    "worker_prefetch": (0, 1000),
    "web_concurrency": (1, 64),
    "db_pool_max_size": (1, 500),
    "postgres_max_connections": (20, 10000),
    "postgres_shared_buffers_mb": (16, 1048576),
    "postgres_effective_cache_size_mb": (16, 4194304),
    "postgres_maintenance_work_mem_mb": (1, 65536),
    "web_memory_limit_mb": (64, 1048576),
    "worker_memory_limit_mb": (64, 1048576),
    "postgres_memory_limit_mb": (64, 1048576),
    "valkey_memory_limit_mb": (64, 1048576),
    "web_replicas": (1, 100),
    "worker_replicas": (1, 100),
    "locust_port": (1, 65535),
    "proxy_http_port": (1, 65535),
    "proxy_https_port": (1, 65535),
    "proxy_max_body_mb": (1, 1024),
    "prometheus_port": (1, 65535),
    "grafana_port": (1, 65535),
}


def _takes_whole_numbers(spec) -> bool:
    """A whole-number parser refuses words with "use a whole number from LOW to HIGH"."""
    try:
        spec.parse("many")
    except Invalid as refused:
        return refused.fix.startswith("use a whole number from")
    except (ValueError, TypeError, KeyError):
        return False
    return False


def test_every_whole_number_setting_has_its_bounds_written_here():
    """A new numeric setting must get its row above."""
    found = {spec.name for spec in SPECS if _takes_whole_numbers(spec)}
    assert found == set(INT_BOUNDS) | {"glitchtip_major"}


@pytest.mark.parametrize("value", [0, 4, 7, 99, 100, "5.0"])
def test_only_the_supported_glitchtip_majors(value):
    with pytest.raises(Invalid):
        SPEC_BY_NAME["glitchtip_major"].parse(value)
    assert [SPEC_BY_NAME["glitchtip_major"].parse(v) for v in (5, "6")] == [5, 6]


@pytest.mark.parametrize("name", sorted(INT_BOUNDS))
def test_the_ends_are_accepted_and_one_past_each_is_refused(name):
    low, high = INT_BOUNDS[name]
    parse = SPEC_BY_NAME[name].parse
    assert parse(low) == low and parse(str(low)) == low
    assert parse(high) == high and parse(str(high)) == high
    for outside in (low - 1, high + 1):
        with pytest.raises(Invalid) as refused:
            parse(outside) if outside >= 0 else parse(str(outside))
        assert f"from {low} to {high}" in refused.value.fix


@pytest.mark.parametrize("name", sorted(INT_BOUNDS))
def test_not_a_whole_number_is_refused(name):
    parse = SPEC_BY_NAME[name].parse
    for bad in (True, "1.5", "", "ten", "²", "1" + "0" * 13):
        with pytest.raises(Invalid):
            parse(bad)


def test_zero_web_replicas_is_refused_from_the_command_line(tmp_path):
    """The user's view: one line naming the fix, exit 2, no file written."""
    result = run(tmp_path, "init", "--set", "web_replicas=0")
    assert result.exit_code == 2, result.output
    assert "web_replicas" in result.output and "from 1 to 100" in result.output
    assert not (tmp_path / "glitchtip.yaml").exists() and not (tmp_path / ".env").exists()


@pytest.mark.parametrize("per", ["1h", "41d", "5w", "24h", "984h"])
def test_error_budget_windows_from_one_hour_to_41_days(per):
    budgets = parse_error_budgets({"web": {"max_errors": 1, "per": per}})
    assert budgets["web"] == {"max_errors": 1, "per": per}


@pytest.mark.parametrize("per", ["0h", "0d", "0w", "42d", "6w", "985h", "1000h", "1", "h", "1m"])
def test_error_budget_windows_outside_are_refused(per):
    with pytest.raises(Invalid) as refused:
        parse_error_budgets({"web": {"max_errors": 1, "per": per}})
    assert refused.value.problem.startswith("error_budgets.web.per: ")
    assert "from 1h to 41d" in refused.value.fix


@pytest.mark.parametrize("count", [0, -1, 1_000_000_001, True, 1.5])
def test_error_budget_counts_outside_are_refused(count):
    with pytest.raises(Invalid) as refused:
        parse_error_budgets({"default": {"max_errors": count, "per": "1d"}})
    assert refused.value.problem.startswith("error_budgets.default.max_errors: ")


def test_error_budget_count_ends_are_accepted():
    budgets = parse_error_budgets(
        {
            "default": {"max_errors": 1, "per": "1h"},
            "web": {"max_errors": 1_000_000_000, "per": "1d"},
        }
    )
    assert budgets["default"]["max_errors"] == 1 and budgets["web"]["max_errors"] == 10**9
