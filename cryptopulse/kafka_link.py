"""Whether Kafka answers, as one client sees it: one log line when it goes away and one when
it is back (with how long), never a line per retry.

Shared by the producer and the API's Kafka consumer; the Spark job's clients fail their batch
instead (the supervisor restarts the job).
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError

QUIET_CLIENT_LOG = 2
"""librdkafka's own `log_level` (syslog critical): its per-attempt "Connection refused"
lines (two a second while the broker is away) stay out; `error_cb` reports the outage once."""

_BROKER_DOWN = (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT)


class KafkaLink:
    def __init__(self, bootstrap: str, log: logging.Logger, while_away: str = "") -> None:
        self.bootstrap = bootstrap
        self.log = log
        self.while_away = while_away
        self.away_since: float | None = None
        """Monotonic time Kafka became unreachable; None while it answers."""

    def on_error(self, err: KafkaError) -> bool:
        """Take an `error_cb` error; True when it says the broker is unreachable."""
        if err.code() not in _BROKER_DOWN:
            return False
        if self.away_since is None:
            self.away_since = time.monotonic()
            note = f"; {self.while_away}" if self.while_away else ""
            self.log.warning("Kafka at %s is unreachable%s", self.bootstrap, note)
        return True

    def answered(self, note: str = "") -> None:
        """Kafka answered (a delivery, a fetch): log once that it is back."""
        if self.away_since is not None:
            away = time.monotonic() - self.away_since
            self.away_since = None
            self.log.warning("Kafka is back after %.0f s%s", away, f"; {note}" if note else "")
