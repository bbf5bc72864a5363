"""``Bridge.send_order`` and ``close_position`` on a scripted gateway, in virtual time.

The exactly-once logic of the client, one answer at a time: what is sent again (always with
the same uuid), when the gateway is asked about an order, how long a PENDING one is waited
on, when the client gives up and what it then says. No socket and no process: the Bridge
runs on ``ScriptedChannel`` (its transport seam) and a ``VirtualTimeLoop``, so each test
checks the schedule (backoffs, deadlines) in milliseconds of real time.
The end-to-end layer, against real gateways, is test_e2e_client.py and test_faults.py.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from fake_channel import (
    ALIVE,
    NEVER_SENT,
    TIMEOUT,
    ScriptedChannel,
    Step,
    answer,
    filled,
    not_found,
    pending,
    refused,
)
from support import events, sends, virtual_time

from inf_bridge import (
    Bridge,
    CircuitOpen,
    GatewayTimeout,
    GatewayUnreachable,
    InvalidOrder,
    NotExecuted,
    OrderRejected,
    OutcomeUnknown,
    RiskLimits,
)
from protocol import (
    RATES_DTYPE,
    Close,
    ErrorCode,
    GetOrder,
    Open,
    Request,
    Rows,
    Status,
    secret_key,
    verify,
)

SECRET = "logic-test-secret-0123456789abcdef"
BUSY, DISCONNECTED, JOURNAL = (
    ErrorCode.BUSY,
    ErrorCode.MT5_DISCONNECTED,
    ErrorCode.JOURNAL_UNAVAILABLE,
)


def bridge_on(channel: ScriptedChannel, **options: Any) -> Bridge:
    """A Bridge on ``channel``, stamping and signing in the channel's (virtual) time."""
    return Bridge("scripted", secret=SECRET, transport=channel, clock=channel.clock, **options)


def now() -> float:
    return asyncio.get_running_loop().time()


def forever(step: Step) -> itertools.repeat[Step]:
    return itertools.repeat(step)


# -- sent again with the same uuid -------------------------------------------------------------


@virtual_time
async def test_an_unanswered_order_is_sent_again_with_the_same_uuid_signed_anew(
    audit_file: Path,
) -> None:
    channel = ScriptedChannel({"OPEN": [TIMEOUT, filled(ticket=7)]})
    async with bridge_on(channel, request_timeout=2.0) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="again-1")
    assert (fill.ticket, fill.uuid, fill.duplicate) == (7, "again-1", False)
    first, second = channel.sent("OPEN")
    assert isinstance(first, Open) and isinstance(second, Open)
    assert first.uuid == second.uuid == "again-1"
    # Signed again at the moment of each send: a stale signature would expire at the gateway.
    for order in (first, second):
        assert verify(secret_key(SECRET), order, now_ms=int(order.timestamp * 1000)) > 0
    assert first.risk_signature != second.risk_signature
    # The first waited out its request_timeout, then the backoff, then the second left.
    assert second.timestamp - first.timestamp == pytest.approx(2.0 + 0.2, abs=0.01)
    assert [s.get("after") for s in sends(audit_file, "again-1")] == [None, "no answer"]
    assert events(audit_file, "again-1") == ["RISK_PASS", "ZMQ_SENT", "ZMQ_SENT", "MT5_FILLED"]


@virtual_time
async def test_after_the_last_retry_the_gateway_is_asked_about_the_order() -> None:
    channel = ScriptedChannel({"OPEN": [TIMEOUT] * 3, "GET_ORDER": [filled(ticket=8)]})
    async with bridge_on(channel, retries=2) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="asked-1")
    assert fill.ticket == 8  # the last send had executed: its stored reply
    assert len(channel.sent("OPEN")) == 3  # the first, then `retries` more
    (question,) = channel.sent("GET_ORDER")
    assert isinstance(question, GetOrder) and question.order_uuid == "asked-1"
    assert question.uuid != "asked-1"  # a query of its own


@virtual_time
async def test_a_busy_answer_to_the_question_is_no_answer_about_the_order() -> None:
    channel = ScriptedChannel(
        {"OPEN": [TIMEOUT] * 3, "GET_ORDER": [refused(BUSY), refused(BUSY), filled(ticket=8)]}
    )
    async with bridge_on(channel, retries=2) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="busy-asked-1")
    assert fill.ticket == 8  # BUSY refused the GET_ORDER, not the order: asked again
    assert len(channel.sent("GET_ORDER")) == 3


@virtual_time
async def test_a_question_busy_to_the_end_leaves_the_outcome_unknown() -> None:
    channel = ScriptedChannel({"OPEN": [TIMEOUT] * 3, "GET_ORDER": forever(refused(BUSY))})
    async with bridge_on(channel, retries=2) as bridge:
        with pytest.raises(OutcomeUnknown) as excinfo:
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="busy-asked-2")
    assert excinfo.value.uuid == "busy-asked-2"  # never "rejected": it may have executed


@virtual_time
async def test_an_order_the_gateway_never_had_is_not_executed(audit_file: Path) -> None:
    channel = ScriptedChannel({"OPEN": [TIMEOUT] * 3, "GET_ORDER": [not_found()]})
    async with bridge_on(channel, risk=RiskLimits(max_order_volume=1.0)) as bridge:
        with pytest.raises(GatewayTimeout, match="nothing was executed") as excinfo:
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="never-had-1")
        assert bridge.risk is not None and bridge.risk.exposure("EURUSD") == 0.0  # released
    assert isinstance(excinfo.value, NotExecuted)
    assert events(audit_file, "never-had-1")[-1] == "NOT_EXECUTED"


@virtual_time
async def test_when_nothing_answers_the_outcome_is_unknown_and_its_exposure_held(
    audit_file: Path,
) -> None:
    channel = ScriptedChannel({"OPEN": [TIMEOUT] * 3, "GET_ORDER": [TIMEOUT]})
    async with bridge_on(channel, risk=RiskLimits(max_order_volume=1.0)) as bridge:
        with pytest.raises(OutcomeUnknown) as excinfo:
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="unknown-1")
        # It may have filled: its exposure stays counted until the next book sync.
        assert bridge.risk is not None and bridge.risk.exposure("EURUSD") == pytest.approx(0.1)
    assert excinfo.value.uuid == "unknown-1"
    assert not isinstance(excinfo.value, NotExecuted)
    assert events(audit_file, "unknown-1") == ["RISK_PASS"] + ["ZMQ_SENT"] * 3 + ["OUTCOME_UNKNOWN"]


@virtual_time
async def test_a_send_in_doubt_is_asked_about_even_when_the_next_cannot_be_sent() -> None:
    channel = ScriptedChannel({"OPEN": [TIMEOUT, NEVER_SENT], "GET_ORDER": [filled(ticket=9)]})
    async with bridge_on(channel) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="doubt-1")
    assert fill.ticket == 9  # the first send had arrived, and executed: not "unreachable"
    assert len(channel.sent("OPEN")) == 1 and len(channel.times("OPEN")) == 2


# -- never sent --------------------------------------------------------------------------------


@virtual_time
async def test_an_order_that_could_not_be_sent_is_gateway_unreachable(audit_file: Path) -> None:
    channel = ScriptedChannel({"OPEN": [NEVER_SENT]})
    async with bridge_on(channel, request_timeout=0.5) as bridge:
        started = now()
        with pytest.raises(GatewayUnreachable):
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="unsent-1")
        assert now() - started == pytest.approx(0.5, abs=0.01)  # one timeout, no retries
    assert channel.sent("OPEN") == [] and len(channel.times("OPEN")) == 1
    assert channel.sent("GET_ORDER") == []  # nothing to ask about
    assert events(audit_file, "unsent-1") == ["RISK_PASS", "NOT_EXECUTED"]  # no ZMQ_SENT


@virtual_time
async def test_an_open_breaker_refuses_before_anything_is_sent(audit_file: Path) -> None:
    channel = ScriptedChannel()
    async with bridge_on(channel) as bridge:
        bridge.breaker.trip("MANUAL")
        with pytest.raises(CircuitOpen):
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="breaker-1")
    assert channel.times("OPEN") == []
    assert events(audit_file, "breaker-1") == ["RISK_REJECTED"]


# -- PENDING -----------------------------------------------------------------------------------


@virtual_time
async def test_a_pending_order_is_waited_on_until_it_settles() -> None:
    channel = ScriptedChannel(
        {"OPEN": [pending()], "GET_ORDER": [pending(), pending(), filled(ticket=10)]}
    )
    async with bridge_on(channel) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="pending-1")
    assert fill.ticket == 10 and len(channel.sent("OPEN")) == 1  # never sent twice
    sent = channel.times("OPEN")[0]
    asked = [at - sent for at in channel.times("GET_ORDER")]
    assert asked == pytest.approx([0.25, 0.5, 0.75], abs=0.01)  # polled every 0.25 s


@virtual_time
async def test_a_pending_order_reconciled_as_never_executed_is_sent_again(
    audit_file: Path,
) -> None:
    channel = ScriptedChannel(
        {"OPEN": [pending(), filled(ticket=11)], "GET_ORDER": [pending(), not_found()]}
    )
    async with bridge_on(channel) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="freed-1")
    assert fill.ticket == 11
    assert [o.uuid for o in channel.sent("OPEN")] == ["freed-1", "freed-1"]
    after = [s.get("after") for s in sends(audit_file, "freed-1")]
    assert after == [None, "reconciled as not executed"]


@virtual_time
async def test_an_unanswered_order_found_pending_is_waited_on() -> None:
    channel = ScriptedChannel({"OPEN": [TIMEOUT] * 3, "GET_ORDER": [pending(), filled(ticket=12)]})
    async with bridge_on(channel) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="late-1")
    assert fill.ticket == 12 and len(channel.sent("OPEN")) == 3


@virtual_time
async def test_an_order_still_pending_at_its_order_timeout_is_outcome_unknown() -> None:
    channel = ScriptedChannel({"OPEN": [pending()], "GET_ORDER": forever(pending())})
    async with bridge_on(channel, order_timeout=3.0) as bridge:
        started = now()
        with pytest.raises(OutcomeUnknown, match=r"still pending when its order_timeout \(3 s\)"):
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="stuck-1")
        assert now() - started == pytest.approx(3.0, abs=0.26)  # not a poll longer
    assert len(channel.sent("OPEN")) == 1


# -- "not executed, try again" -----------------------------------------------------------------


@virtual_time
async def test_not_executed_answers_are_sent_again_with_backoff_until_it_fills(
    audit_file: Path,
) -> None:
    script = [refused(BUSY), refused(DISCONNECTED), refused(JOURNAL), filled(ticket=13)]
    channel = ScriptedChannel({"OPEN": script})
    async with bridge_on(channel) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="patient-1")
    assert fill.ticket == 13
    assert [o.uuid for o in channel.sent("OPEN")] == ["patient-1"] * 4
    first = channel.times("OPEN")[0]
    gaps = [at - first for at in channel.times("OPEN")]
    assert gaps == pytest.approx([0.0, 0.2, 0.6, 1.4], abs=0.01)  # 0.2 s, doubling
    after = [s.get("after") for s in sends(audit_file, "patient-1")]
    assert after == [None, "BUSY", "MT5_DISCONNECTED", "JOURNAL_UNAVAILABLE"]
    assert channel.sent("GET_ORDER") == []  # a refusal leaves nothing in doubt


@virtual_time
async def test_not_executed_answers_are_sent_again_only_within_the_order_timeout() -> None:
    channel = ScriptedChannel({"OPEN": forever(refused(DISCONNECTED))})
    async with bridge_on(channel, order_timeout=5.0) as bridge:
        started = now()
        with pytest.raises(OrderRejected) as excinfo:
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="hasty-1")
        assert now() - started == pytest.approx(5.0, abs=0.05)
    attempts = [at - started for at in channel.times("OPEN")]
    assert attempts[:5] == pytest.approx([0.0, 0.2, 0.6, 1.4, 3.0], abs=0.01)
    assert max(attempts) < 5.0 + 0.01  # none after the deadline
    assert excinfo.value.error_code == "MT5_DISCONNECTED"
    assert f"sent {len(attempts)} time(s), not sent again: its order_timeout (5 s) ran out" in (
        str(excinfo.value)
    )


@virtual_time
async def test_with_retry_not_executed_off_the_first_answer_is_the_answer(
    audit_file: Path,
) -> None:
    channel = ScriptedChannel({"OPEN": [refused(BUSY, "the queue is full")]})
    async with bridge_on(channel, retry_not_executed=False) as bridge:
        with pytest.raises(OrderRejected) as excinfo:
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="once-1")
    assert excinfo.value.error_code == "BUSY" and str(excinfo.value).endswith("the queue is full")
    assert len(channel.sent("OPEN")) == 1
    assert events(audit_file, "once-1") == ["RISK_PASS", "ZMQ_SENT", "REJECTED"]


@virtual_time
async def test_a_refusal_then_no_connection_reports_the_refusal() -> None:
    channel = ScriptedChannel({"OPEN": [refused(BUSY), NEVER_SENT]})
    async with bridge_on(channel) as bridge:
        with pytest.raises(OrderRejected, match="not sent again: the gateway became unreachable"):
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="gone-1")
    assert channel.sent("GET_ORDER") == []  # the refusal said it had not executed


@virtual_time
async def test_a_terminal_verdict_is_final() -> None:
    channel = ScriptedChannel({"OPEN": [refused(ErrorCode.MT5_REJECTED, "no money")]})
    async with bridge_on(channel) as bridge:
        with pytest.raises(OrderRejected) as excinfo:
            await bridge.send_order("EURUSD", "BUY", 0.1)
    assert excinfo.value.error_code == "MT5_REJECTED" and len(channel.sent("OPEN")) == 1


# -- the breaker -------------------------------------------------------------------------------


@virtual_time
async def test_a_breaker_opened_by_the_heartbeat_stops_the_retries_of_an_open() -> None:
    # The terminal is away; the first beat is answered, then the gateway goes silent: three
    # missed beats (at 1, 2 and 3 s, each waiting 0.5 s) open the breaker at 3.5 s.
    channel = ScriptedChannel(
        {"OPEN": forever(refused(DISCONNECTED)), "PING": itertools.chain([ALIVE], forever(TIMEOUT))}
    )
    bridge = bridge_on(channel, heartbeat_interval=1.0, heartbeat_timeout=0.5)
    async with bridge:
        started = now()
        with pytest.raises(OrderRejected) as excinfo:
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="broken-1")
        assert bridge.breaker.reason == "HEARTBEAT_FAILURE"
    attempts = [at - started for at in channel.times("OPEN")]
    # Sent at 0, 0.2, 0.6, 1.4 and 3.0 s; the breaker opened before the next, due at 5 s.
    assert attempts == pytest.approx([0.0, 0.2, 0.6, 1.4, 3.0], abs=0.01)
    assert excinfo.value.error_code == "MT5_DISCONNECTED"
    assert "not sent again: the circuit breaker opened (HEARTBEAT_FAILURE)" in str(excinfo.value)


@virtual_time
async def test_a_close_is_sent_again_whatever_the_breaker() -> None:
    channel = ScriptedChannel({"CLOSE": [refused(DISCONNECTED)] * 3 + [filled(ticket=21)]})
    async with bridge_on(channel) as bridge:
        bridge.breaker.trip("MANUAL")  # closing reduces risk: never stopped by it
        fill = await bridge.close_position(21, uuid="close-1")
    assert fill.ticket == 21 and fill.action == "CLOSE"
    closes = channel.sent("CLOSE")
    assert len(closes) == 4 and all(isinstance(c, Close) and c.ticket == 21 for c in closes)
    assert {c.uuid for c in closes} == {"close-1"}


@virtual_time
async def test_an_unanswered_close_is_sent_again_then_asked_about() -> None:
    channel = ScriptedChannel({"CLOSE": [TIMEOUT] * 3, "GET_ORDER": [filled(ticket=22)]})
    async with bridge_on(channel) as bridge:
        fill = await bridge.close_position(22, uuid="close-2")
    assert fill.ticket == 22 and len(channel.sent("CLOSE")) == 3
    (question,) = channel.sent("GET_ORDER")
    assert isinstance(question, GetOrder) and question.order_uuid == "close-2"


# -- the audit trail ---------------------------------------------------------------------------


@virtual_time
async def test_risk_pass_is_recorded_before_each_send_and_zmq_sent_after_it(
    audit_file: Path,
) -> None:
    at_send: list[tuple[str, list[str]]] = []

    def noting(step: Step) -> Step:
        """``step``, noting what the audit trail holds of the order as it is sent."""

        def note(request: Request) -> Step:
            at_send.append((request.uuid, events(audit_file, request.uuid)))
            return step

        return note

    channel = ScriptedChannel(
        {
            "OPEN": [noting(TIMEOUT), noting(filled(ticket=30))],
            "CLOSE": [noting(filled(ticket=30))],
        }
    )
    async with bridge_on(channel) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="causal-1")
        await bridge.close_position(fill.ticket, uuid="causal-2")
    assert at_send == [
        ("causal-1", ["RISK_PASS"]),
        ("causal-1", ["RISK_PASS", "ZMQ_SENT"]),  # the first attempt's, not this one's
        ("causal-2", ["RISK_PASS"]),
    ]
    assert events(audit_file, "causal-1") == ["RISK_PASS", "ZMQ_SENT", "ZMQ_SENT", "MT5_FILLED"]
    assert events(audit_file, "causal-2") == ["RISK_PASS", "ZMQ_SENT", "MT5_FILLED"]


# -- the seam itself ---------------------------------------------------------------------------


def test_a_transport_brings_its_own_connection_options() -> None:
    with pytest.raises(ValueError, match="transport"):
        Bridge("scripted", secret=SECRET, transport=ScriptedChannel(), context=object())  # type: ignore[arg-type]


@virtual_time
async def test_the_bridge_opens_and_closes_its_transport() -> None:
    channel = ScriptedChannel()
    async with bridge_on(channel) as bridge:
        assert channel.is_open and bridge.health.state == "HEALTHY"
        assert bridge.clock_offset == pytest.approx(0.0, abs=0.01)
        assert channel.exchanges[0].at == pytest.approx(0.0, abs=0.01)  # the first beat
    assert not channel.is_open


# -- queries -----------------------------------------------------------------------------------


@virtual_time
async def test_a_busy_query_is_asked_again_within_its_timeout() -> None:
    positions = answer(Status.OK, positions=[])
    channel = ScriptedChannel({"GET_POSITIONS": [refused(BUSY), refused(BUSY), positions]})
    async with bridge_on(channel, request_timeout=5.0) as bridge:
        started = now()
        assert await bridge.get_positions() == []
    asks = [at - started for at in channel.times("GET_POSITIONS")]
    assert asks == pytest.approx([0.0, 0.201, 0.602], abs=0.01)  # 0.2 s, then 0.4 s apart


@virtual_time
async def test_a_query_busy_past_its_timeout_is_refused() -> None:
    channel = ScriptedChannel({"GET_ACCOUNT": forever(refused(BUSY, "unread answers"))})
    async with bridge_on(channel, request_timeout=2.0) as bridge:
        started = now()
        with pytest.raises(OrderRejected, match="unread answers") as excinfo:
            await bridge.get_account()
        assert now() - started < 2.0
    assert excinfo.value.error_code == "BUSY"
    asks = [at - started for at in channel.times("GET_ACCOUNT")]
    assert asks == pytest.approx([0.0, 0.201, 0.602, 1.403], abs=0.01)  # 3.0 s would be late


@virtual_time
async def test_busy_bars_are_asked_again_as_any_query() -> None:
    """A large answer (100,000 bars) may be refused BUSY while this node holds earlier ones
    unread: GET_RATES is asked again like every query, not refused to the strategy."""
    rows = answer(Status.OK, rows=Rows(dtype=RATES_DTYPE, rows=0))
    channel = ScriptedChannel({"GET_RATES": [refused(BUSY), rows]})
    async with bridge_on(channel, request_timeout=5.0) as bridge:
        bars = await bridge.rates("EURUSD", "M1", count=100_000)
    assert len(bars) == 0 and bars.dtype.names == tuple(name for name, _ in RATES_DTYPE)
    assert len(channel.sent("GET_RATES")) == 2


@virtual_time
async def test_with_retry_not_executed_off_a_busy_query_is_refused_at_once() -> None:
    channel = ScriptedChannel({"GET_POSITIONS": [refused(BUSY)]})
    async with bridge_on(channel, retry_not_executed=False) as bridge:
        with pytest.raises(OrderRejected):
            await bridge.get_positions()
    assert len(channel.sent("GET_POSITIONS")) == 1


@virtual_time
async def test_a_value_that_fails_a_pattern_is_said_in_words() -> None:
    async with bridge_on(ScriptedChannel()) as bridge:
        with pytest.raises(InvalidOrder, match=r"uuid: 'a b' is not allowed: .* of 1-64 letters"):
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="a b")
        with pytest.raises(InvalidOrder, match=r"reason: .*without control characters"):
            await bridge.halt("stop\nnow")
