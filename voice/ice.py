"""ICE for the server peer: which addresses it offers, which STUN/TURN servers it uses, and how a
browser's trickled candidate becomes an aiortc candidate."""

from __future__ import annotations

from collections.abc import Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceCandidate, RTCIceServer
from aiortc.sdp import candidate_from_sdp

_original_get_host_addresses = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Offer only these local addresses as host candidates (empty: every address, as aioice does).

    aioice has no option for this and always leaves out 127.0.0.1, which is the only address a
    loopback-only test (or a server behind a known public IP) wants; it looks the function up as
    a module global on each gathering, so replacing that global is enough.
    """
    if not addresses:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return
    fixed = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def rtc_configuration(ice_servers: Sequence[dict]) -> RTCConfiguration:
    """RTCConfiguration from the ICE_SERVERS setting (browser-style dicts)."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=server["urls"],
                username=server.get("username"),
                credential=server.get("credential"),
            )
            for server in ice_servers
        ]
    )


def candidate_from_browser(data: dict) -> RTCIceCandidate | None:
    """A browser's ``RTCIceCandidate.toJSON()`` as aiortc wants it; None for end-of-candidates.

    Raises ValueError for a malformed candidate line.
    """
    line = (data.get("candidate") or "").strip()
    if not line:
        return None
    try:
        candidate = candidate_from_sdp(line.removeprefix("candidate:"))
    # aiortc's parser asserts on a short line (and asserts vanish under python -O).
    except (AssertionError, IndexError, ValueError) as exc:
        raise ValueError(f"malformed ICE candidate: {line[:100]}") from exc
    candidate.sdpMid = data.get("sdpMid")
    candidate.sdpMLineIndex = data.get("sdpMLineIndex")
    return candidate
