"""The SDK's pure parts, and its type hints (mypy --strict)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from mypy import api as mypy

from holdover import BackoffOptions, DedupWindow, HoldoverError, backoff_delay, reconnect_policy
from holdover._frames import Message, parse_server_frame
from holdover.producer import _retry_after_seconds


def test_backoff_delays_are_full_jitter_under_a_doubling_capped_ceiling() -> None:
    options = BackoffOptions(initial_ms=100, max_ms=1000)
    assert [backoff_delay(n, options, lambda: 0.999999) for n in range(6)] == [99, 199, 399, 799, 999, 999]
    assert all(backoff_delay(n, options, lambda: 0.0) == 0 for n in range(6))
    assert backoff_delay(10_000, options, lambda: 0.5) == 500


def test_the_close_code_table_is_the_contracts() -> None:
    assert {c: reconnect_policy(c) for c in (1000, 4400, 4403, 4409)} == dict.fromkeys((1000, 4400, 4403, 4409), "no")
    assert reconnect_policy(1012) == "immediately"
    assert reconnect_policy(4401) == "fresh-token"
    assert all(reconnect_policy(c) == "backoff" for c in (1006, 1007, 1009, 1011, 4429, 4999))


def test_the_dedup_window_forgets_the_oldest_id_beyond_its_capacity() -> None:
    window = DedupWindow(2)
    assert window.add("a") and window.add("b") and not window.add("a")
    assert window.add("c")
    assert "a" not in window and "b" in window and "c" in window and len(window) == 2


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert _retry_after_seconds("3") == 3.0
    in_two = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    assert 0 < (_retry_after_seconds(in_two) or 0) <= 2
    assert _retry_after_seconds("soon") is None and _retry_after_seconds(None) is None


def test_server_frames_outside_the_contract_are_refused() -> None:
    message = parse_server_frame(
        '{"type":"message","id":"m1","priority":"low","payload":null,"enqueuedAt":"t","expiresAt":"t","redelivered":false}'
    )
    assert message == Message("m1", "low", None, "t", "t", False)
    for bad in [
        "nope",
        "[]",
        '{"type":"message","id":"m1"}',
        '{"type":"error","code":42,"message":""}',
        '{"type":"error","message":""}',
        '{"type":"x"}',
    ]:
        with pytest.raises(HoldoverError) as caught:
            parse_server_frame(bad)
        assert caught.value.code == "INVALID_SERVER_FRAME"


def test_the_sdk_and_its_tests_are_formatted_and_lint_free() -> None:
    root = Path(__file__).resolve().parents[1]
    for args in (["format", "--check"], ["check"]):
        done = subprocess.run([sys.executable, "-m", "ruff", *args, str(root)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_type_checks_under_mypy_strict() -> None:
    src = Path(__file__).resolve().parents[1] / "src"
    with tempfile.TemporaryDirectory() as cache:
        out, err, status = mypy.run(["--strict", "--cache-dir", cache, str(src)])
    assert status == 0, out + err
