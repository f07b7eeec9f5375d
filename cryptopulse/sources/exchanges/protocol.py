"""What one exchange's protocol must say, for the shared stream lifecycle (`stream.py`) to run it.

An exchange module (`binance.py`, later Coinbase and Kraken) is pure: the URL and subscribe
messages for a set of subscriptions, and `parse`, which turns one received frame into a
`Frame` — a tick, a control message (subscribe acknowledged, the server shutting down), or a
rejection with its reason. Parsing never raises, whatever the frame holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from cryptopulse.schema import Tick

# `halt`: the exchange says it is not trading normally (Kraken's system status); `reason` says how.
FrameKind = Literal["tick", "ack", "shutdown", "error_reply", "reject", "ignore", "halt"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One received frame, understood. `seq` numbers the messages of `seq_key` (a symbol's trade
    id, a connection's message number) where the protocol numbers them; gaps are counted from
    it, whatever the frame's kind. A frame carrying several ticks (Coinbase batches trades)
    has them in `ticks`; `skipped` names the parts of it that were rejected, one reason each."""

    kind: FrameKind
    tick: Tick | None = None
    reason: str = ""
    seq_key: str = ""
    seq: int | None = None
    ticks: tuple[Tick, ...] = ()
    skipped: tuple[str, ...] = ()


ACK = Frame("ack")
SHUTDOWN = Frame("shutdown")
IGNORE = Frame("ignore")


def reject(reason: str) -> Frame:
    return Frame("reject", reason=reason)


class ExchangeProtocol(Protocol):
    """One exchange's public market-data protocol (see `binance.BinanceProtocol`)."""

    name: str  # the Ticks' `source`
    messages_per_second: float  # what a client may send per connection
    connections_per_5_minutes: int  # connection attempts per address

    def connections(self) -> list[list[str]]:
        """The subscriptions, split into what one connection may carry."""
        ...

    def url(self, subscriptions: Sequence[str]) -> str:
        """Where a connection carrying `subscriptions` connects."""
        ...

    def subscribe_messages(self, subscriptions: Sequence[str]) -> list[str]:
        """The messages that subscribe a fresh connection to `subscriptions`."""
        ...

    def parse(self, raw: str | bytes) -> Frame | list[Frame]:
        """One received frame; never raises. A list when one message carries several trades
        (Kraken batches them)."""
        ...

    def describe(self) -> str: ...


class Sequences:
    """Message numbers per key: a jump is a gap (messages lost), a repeat is a replay.
    Forgotten on reconnect: numbers missed while disconnected are not a protocol gap."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def see(self, key: str, seq: int) -> int:
        """How many messages were skipped before `seq` (0: none); -1 when `seq` is not new."""
        last = self._last.get(key)
        if last is not None and seq <= last:
            return -1
        self._last[key] = seq
        return 0 if last is None else seq - last - 1

    def reset(self) -> None:
        self._last.clear()
