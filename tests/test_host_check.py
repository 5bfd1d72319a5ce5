"""The Host check behind the 421 answer: verdicts remembered per header value, forgotten when
the settings change, and the memo bounded whatever Host headers clients send."""

from __future__ import annotations

from django.test import override_settings

from mcp_sse.transports import base


def test_verdicts_follow_allowed_hosts() -> None:
    with override_settings(ALLOWED_HOSTS=["mcp.example.com", ".example.org"]):
        assert base.host_allowed("mcp.example.com")
        assert base.host_allowed("mcp.example.com:8443")
        assert base.host_allowed("api.example.org")
        assert not base.host_allowed("evil.example.net")
        assert not base.host_allowed("")  # no Host header at all
        assert not base.host_allowed("bad host")


def test_a_settings_change_forgets_remembered_verdicts() -> None:
    with override_settings(ALLOWED_HOSTS=["one.example.com"]):
        assert base.host_allowed("one.example.com")
        with override_settings(ALLOWED_HOSTS=["two.example.com"]):
            assert not base.host_allowed("one.example.com")
            assert base.host_allowed("two.example.com")
        assert base.host_allowed("one.example.com")


def test_the_memo_stays_bounded() -> None:
    with override_settings(ALLOWED_HOSTS=["ok.example.com"]):
        for n in range(base.HOST_MEMO_LIMIT * 3):
            assert not base.host_allowed(f"h{n}.invalid")
        memo = base.mcp_settings.derived("host_verdicts", dict)
        assert len(memo) == base.HOST_MEMO_LIMIT
        assert base.host_allowed("ok.example.com")  # still answered right once the memo is full
