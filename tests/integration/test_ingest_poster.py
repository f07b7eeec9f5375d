"""The stream job's POST sink against a real HTTP receiver on loopback."""

from __future__ import annotations

import threading
import time

import pytest

from cryptopulse.stream.sinks import IngestPoster
from tests.fakes.receiver import Receiver

pytestmark = pytest.mark.integration

RECORDS = [b'{"coin":"bitcoin","n":1}', b'{"coin":"ethereum","n":2}']


def test_delivers_with_token_and_chunks() -> None:
    receiver = Receiver().start()
    try:
        poster = IngestPoster(receiver.url, "s3cret", retry_seconds=2, max_body_bytes=40)
        assert poster.post(RECORDS)
        assert [b["data"] for b in receiver.bodies] == [
            [{"coin": "bitcoin", "n": 1}],
            [{"coin": "ethereum", "n": 2}],
        ]
        assert receiver.headers[0]["authorization"] == "Bearer s3cret"
    finally:
        receiver.stop()


def test_gives_up_after_the_bounded_retry_time_when_the_api_is_down() -> None:
    receiver = Receiver()  # never started: connection refused
    poster = IngestPoster(receiver.url, None, retry_seconds=1.5, max_body_bytes=1 << 20)
    started = time.monotonic()
    assert not poster.post(RECORDS)
    assert 1.5 <= time.monotonic() - started < 10


def test_recovers_when_the_api_comes_back_within_the_retry_time() -> None:
    receiver = Receiver()
    poster = IngestPoster(receiver.url, None, retry_seconds=20, max_body_bytes=1 << 20)
    timer = threading.Timer(1.5, receiver.start)
    timer.start()
    try:
        assert poster.post(RECORDS)
        assert receiver.records == [{"coin": "bitcoin", "n": 1}, {"coin": "ethereum", "n": 2}]
    finally:
        timer.join()
        receiver.stop()


def test_server_errors_are_retried_but_rejections_are_not() -> None:
    receiver = Receiver(status=422).start()
    try:
        poster = IngestPoster(receiver.url, None, retry_seconds=5, max_body_bytes=1 << 20)
        assert not poster.post(RECORDS)
        assert len(receiver.bodies) == 1  # a 4xx is final: the body will not get better
        receiver.status = 503
        started = time.monotonic()
        poster.retry_seconds = 1
        assert not poster.post(RECORDS)
        assert len(receiver.bodies) > 2 and time.monotonic() - started >= 1
    finally:
        receiver.stop()


def test_after_a_give_up_each_batch_tries_once_until_the_api_answers() -> None:
    receiver = Receiver(status=503).start()
    try:
        poster = IngestPoster(receiver.url, None, retry_seconds=1, max_body_bytes=1 << 20)
        assert not poster.post(RECORDS)  # retried for a second, then given up
        retried = len(receiver.bodies)
        assert retried > 1
        started = time.monotonic()
        assert not poster.post(RECORDS)
        assert len(receiver.bodies) == retried + 1  # one attempt: the stream is not held back
        assert time.monotonic() - started < 1
        receiver.status = 200
        assert poster.post(RECORDS)
        receiver.status = 503
        assert not poster.post(RECORDS)
        assert len(receiver.bodies) > retried + 3  # answered once: full retries again
    finally:
        receiver.stop()
