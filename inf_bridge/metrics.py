"""An optional Prometheus exporter for a strategy node's Bridge.

    serve_metrics(bridge, port=9101)

    mt5_bridge_breaker_open                  1 while the circuit breaker is open
    mt5_bridge_health                        0 HEALTHY, 1 DEGRADED, 2 FAILED
    mt5_bridge_heartbeat_rtt_seconds         last PING round trip
    mt5_bridge_heartbeat_failures            consecutive missed beats
    mt5_bridge_clock_offset_seconds          the gateway's clock minus ours

Every value is read from the Bridge when scraped; nothing is added to the order path.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from inf_bridge.client import Bridge

__all__ = ["bridge_registry", "serve_metrics"]

_HEALTH: Final = {"HEALTHY": 0.0, "DEGRADED": 1.0, "FAILED": 2.0}


def bridge_registry(bridge: Bridge) -> CollectorRegistry:
    """A registry whose gauges read ``bridge`` at each scrape."""
    registry = CollectorRegistry()
    gauges = {
        "mt5_bridge_breaker_open": (
            "1 while the circuit breaker is open",
            lambda: float(bridge.breaker.is_open),
        ),
        "mt5_bridge_health": (
            "Heartbeat state: 0 HEALTHY, 1 DEGRADED, 2 FAILED",
            lambda: _HEALTH[bridge.health.state],
        ),
        "mt5_bridge_heartbeat_rtt_seconds": (
            "Last PING round trip",
            lambda: bridge.health.last_rtt or 0.0,
        ),
        "mt5_bridge_heartbeat_failures": (
            "Consecutive missed heartbeats",
            lambda: float(bridge.health.consecutive_failures),
        ),
        "mt5_bridge_clock_offset_seconds": (
            "The gateway's clock minus ours",
            lambda: bridge.clock_offset,
        ),
    }
    for name, (documentation, read) in gauges.items():
        Gauge(name, documentation, registry=registry).set_function(read)
    return registry


def serve_metrics(bridge: Bridge, port: int, host: str = "127.0.0.1") -> CollectorRegistry:
    """Serve ``bridge``'s metrics on ``host:port`` (``/metrics``) from a background thread."""
    registry = bridge_registry(bridge)
    start_http_server(port, addr=host, registry=registry)
    return registry
