"""A process's acknowledgements (``shared.messaging.delivery.AckBatcher``) go back to each
sender in batches, one message per sender every ``FLUSH_SECONDS`` however many come meanwhile,
and none is lost between two batches."""

from __future__ import annotations

import threading
import time

from shared.messaging.delivery import FLUSH_SECONDS, AckBatcher


class _Senders:
    """What the batcher sent, message by message: (origin, message ids)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()

    def send(self, origin: str, acks: list[dict[str, str]]) -> None:
        assert {a["subscriber"] for a in acks} == {"payment"}
        with self.lock:
            self.sent.append((origin, [a["message_id"] for a in acks]))

    def acked(self, origin: str) -> list[str]:
        with self.lock:
            return [m for o, ids in self.sent if o == origin for m in ids]


def _wait_for(senders: _Senders, origin: str, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(senders.acked(origin)) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_steady_stream_goes_back_in_one_message_per_flush_interval() -> None:
    senders = _Senders()
    batcher = AckBatcher(senders.send, "payment")
    ids = [f"m{n}" for n in range(30)]
    started = time.monotonic()
    for message_id in ids:  # one every 20 ms, for 0.6 s
        batcher.ack("gateway", message_id)
        time.sleep(0.02)
    _wait_for(senders, "gateway", len(ids))
    elapsed = time.monotonic() - started
    assert senders.acked("gateway") == ids  # each once, in order
    # A batch per interval (and one for the stragglers), not one per acknowledgement or two.
    assert len(senders.sent) <= elapsed / FLUSH_SECONDS + 2
    assert len(senders.sent) < len(ids) / 3


def test_each_sender_hears_of_its_own_messages_only() -> None:
    senders = _Senders()
    batcher = AckBatcher(senders.send, "payment")
    for n in range(5):
        batcher.ack("gateway", f"g{n}")
        batcher.ack("ledger", f"l{n}")
    _wait_for(senders, "gateway", 5)
    _wait_for(senders, "ledger", 5)
    assert senders.acked("gateway") == [f"g{n}" for n in range(5)]
    assert senders.acked("ledger") == [f"l{n}" for n in range(5)]
    assert sorted(o for o, _ in senders.sent) == ["gateway", "ledger"]  # one message each


def test_an_acknowledgement_after_a_flush_goes_in_the_next_batch() -> None:
    senders = _Senders()
    batcher = AckBatcher(senders.send, "payment")
    batcher.ack("gateway", "first")
    _wait_for(senders, "gateway", 1)
    batcher.ack("gateway", "second")
    _wait_for(senders, "gateway", 2)
    assert senders.sent == [("gateway", ["first"]), ("gateway", ["second"])]
