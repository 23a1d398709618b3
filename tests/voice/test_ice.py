from __future__ import annotations

import aioice.ice
import pytest

from voice.ice import candidate_from_browser, restrict_host_addresses, rtc_configuration


def test_browser_candidates_become_aiortc_candidates():
    candidate = candidate_from_browser(
        {
            "candidate": "candidate:842163049 1 udp 1677729535 127.0.0.1 54321 typ host generation 0",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
    )
    assert (candidate.ip, candidate.port, candidate.type) == ("127.0.0.1", 54321, "host")
    assert (candidate.sdpMid, candidate.sdpMLineIndex) == ("0", 0)


def test_an_empty_candidate_means_end_of_candidates():
    assert candidate_from_browser({"candidate": "", "sdpMid": "0"}) is None


def test_a_malformed_candidate_is_a_value_error():
    with pytest.raises(ValueError, match="malformed"):
        candidate_from_browser({"candidate": "candidate:nonsense"})


def test_host_addresses_can_be_restricted_to_loopback_and_restored():
    try:
        restrict_host_addresses(["127.0.0.1", "::1"])
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]
    finally:
        restrict_host_addresses([])
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


def test_ice_servers_setting_becomes_an_rtc_configuration():
    config = rtc_configuration(
        [
            {"urls": "stun:stun.example.com:3478"},
            {"urls": ["turn:t.example.com"], "username": "u", "credential": "p"},
        ]
    )
    assert [s.urls for s in config.iceServers] == [
        "stun:stun.example.com:3478",
        ["turn:t.example.com"],
    ]
    assert config.iceServers[1].username == "u"
