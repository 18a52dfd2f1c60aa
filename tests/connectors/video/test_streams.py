"""GB/T 28181 device ids and the stream URL signer, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.identifiers import gb28181_problem, make_gb28181
from connectors.video.streams import StreamRejected, StreamSigner, load_key

KEY = b"k" * 32


@pytest.mark.parametrize(
    ("device_id", "problem"),
    [
        ("33020301001320000001", None),
        ("3302030100132000000", "wrong length"),
        ("3302030100132000000X", "invalid character"),
        ("99020301001320000001", "unknown province"),
        ("33020301991320000001", "industry code"),
        ("33020301001180000001", "not a camera"),
        ("33020301001329000001", "reserved"),
    ],
)
def test_device_ids_are_checked_field_by_field(device_id: str, problem: str | None) -> None:
    found = gb28181_problem(device_id)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_make_gb28181_only_makes_valid_ids() -> None:
    assert make_gb28181("330212", 3, "08", "131", 6, 42) == "33021203081316000042"
    with pytest.raises(ValueError):
        make_gb28181("330212", 3, "99", "131", 6, 42)


def test_urls_live_at_most_the_cap_and_carry_the_grant() -> None:
    signer = StreamSigner(KEY, max_ttl_s=300)
    grant = signer.issue(
        "https://media.example.invalid/hls", "live/x/index.m3u8", subject="a", department="d",
        purpose="p", case_ref="c 1/2", ttl_s=10_000, now=1_000,
    )  # fmt: skip
    assert grant.expires_at == 1_300
    assert signer.verify(grant.url, now=1_299).case_ref == "c 1/2"
    with pytest.raises(StreamRejected, match="expired"):
        signer.verify(grant.url, now=1_300)
    with pytest.raises(StreamRejected, match="another key"):
        StreamSigner(b"z" * 32).verify(grant.url, now=1_000)
    with pytest.raises(StreamRejected, match="malformed"):
        signer.verify("https://media.example.invalid/hls/live/x/index.m3u8", now=1_000)


def test_keys_must_be_long_and_come_from_env_or_a_private_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        StreamSigner(b"short")
    key_file = tmp_path / "key"
    first = load_key("CITYGRAPH_TEST_NO_SUCH_VAR", key_file)
    assert len(first) >= 32 and load_key("CITYGRAPH_TEST_NO_SUCH_VAR", key_file) == first
    assert key_file.stat().st_mode & 0o077 == 0
    monkeypatch.setenv("CITYGRAPH_TEST_STREAM_KEY", "e" * 40)
    assert load_key("CITYGRAPH_TEST_STREAM_KEY", key_file) == b"e" * 40
