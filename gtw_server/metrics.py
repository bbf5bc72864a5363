"""Prometheus metrics for the gateway (``--metrics-port``).

    mt5_gateway_requests_total{action, status}         replies sent
    mt5_gateway_request_seconds{action}                 receive -> reply, histogram
    mt5_gateway_terminal_call_seconds{op}               one call in the terminal worker
    mt5_gateway_in_flight                                requests waiting on the terminal
    mt5_gateway_terminal_queue                           calls sent to the worker, unanswered
    mt5_gateway_journal_entries                          uuids the journal remembers
    mt5_gateway_journal_unsettled                        replies kept in memory, not journaled
    mt5_gateway_mt5_connected, mt5_gateway_halted        0 or 1
    mt5_gateway_worker_restarts                         terminal worker restarts so far
    mt5_gateway_replies_dropped                         replies a peer did not read, dropped

Gauges are read when scraped, so keeping them costs nothing on the request path; counters and
histograms are updated in place (about a microsecond each).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from gtw_server.journal import Journal

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
    10, 30,
)  # fmt: skip


class GatewayMetrics:
    """The gateway's metrics, in their own registry (so tests can have several gateways)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "mt5_gateway_requests",
            "Replies sent, by action and status",
            ["action", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "mt5_gateway_request_seconds",
            "Time from receiving a request to sending its reply",
            ["action"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._terminal = Histogram(
            "mt5_gateway_terminal_call_seconds",
            "Duration of one call in the terminal worker",
            ["op"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_reply(self, action: str | None, status: str, seconds: float) -> None:
        action = action or "UNPARSED"
        self._requests.labels(action, status).inc()
        self._latency.labels(action).observe(seconds)

    def observe_terminal_call(self, op: str, seconds: float) -> None:
        self._terminal.labels(op).observe(seconds)

    def gauge(self, name: str, documentation: str, read: Callable[[], float | bool]) -> None:
        """A gauge whose value is ``read()`` at each scrape."""
        Gauge(name, documentation, registry=self.registry).set_function(read)

    def expose(
        self,
        *,
        in_flight: Callable[[], int],
        terminal_queue: Callable[[], int],
        journal: Journal,
        connected: Callable[[], bool],
        halted: Callable[[], bool],
        worker_restarts: Callable[[], int],
        replies_dropped: Callable[[], int],
        server_offset: Callable[[], float],
    ) -> None:
        """The gauges of the gateway's state, each read at scrape time."""
        self.gauge("mt5_gateway_in_flight", "Requests waiting on the terminal", in_flight)
        self.gauge("mt5_gateway_terminal_queue", "Calls sent to the worker", terminal_queue)
        self.gauge("mt5_gateway_journal_entries", "uuids remembered", lambda: len(journal))
        self.gauge(
            "mt5_gateway_journal_unsettled",
            "Replies kept in memory because the journal could not be written",
            lambda: journal.unsettled,
        )
        self.gauge("mt5_gateway_mt5_connected", "1 when the terminal is connected", connected)
        self.gauge("mt5_gateway_halted", "1 when the kill switch is on", halted)
        self.gauge("mt5_gateway_worker_restarts", "Terminal worker restarts", worker_restarts)
        self.gauge(
            "mt5_gateway_replies_dropped",
            "Replies dropped because the peer was gone or did not read them",
            replies_dropped,
        )
        self.gauge(
            "mt5_gateway_server_offset_seconds",
            "The trade server's clock minus UTC (7200: UTC+2); NaN until known",
            server_offset,
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``host:port`` from a background thread."""
        start_http_server(port, addr=host, registry=self.registry)
