from __future__ import annotations

from pathlib import Path

import orjson

from cryptopulse.stream.rejects import RejectedRange, committed_gap, rejected_range
from cryptopulse.stream.sinks import chunk_records, ingest_body


def test_chunks_stay_under_the_body_limit_and_keep_order() -> None:
    records = [orjson.dumps({"coin": f"c{i}", "pad": "x" * (i % 50)}) for i in range(500)]
    chunks = list(chunk_records(records, 2000))
    assert [r for c in chunks for r in c] == records
    assert all(len(ingest_body(c)) <= 2000 for c in chunks)
    assert len(chunks) > 1


def test_ingest_body_is_the_api_envelope() -> None:
    body = ingest_body([b'{"a":1}', b'{"b":2}'])
    assert orjson.loads(body) == {"data": [{"a": 1}, {"b": 2}]}


def test_one_oversized_record_still_goes_alone() -> None:
    big = b"x" * 5000
    assert list(chunk_records([b"a", big, b"b"], 100)) == [[b"a"], [big], [b"b"]]


def progress(batch_id: int, rejected: int | None, start: object, end: object) -> dict[str, object]:
    """A query progress as Spark writes it (only the fields read here)."""
    metrics = {} if rejected is None else {"rejected": {"rejected": rejected}}
    return {
        "batchId": batch_id,
        "observedMetrics": metrics,
        "sources": [{"startOffset": start, "endOffset": end}],
    }


def test_a_batch_with_rejected_records_is_read_again_over_its_exact_range() -> None:
    start, end = {"ticks": {"0": 10, "1": 4}}, {"ticks": {"0": 25, "1": 9}}
    batch = rejected_range(progress(7, 3, start, end), "latest")
    assert batch == RejectedRange(7, orjson.dumps(start).decode(), orjson.dumps(end).decode(), 3)
    # Spark may give the offsets as JSON text; the first batch has no start offset.
    first = rejected_range(progress(0, 1, None, '{"ticks":{"0":5}}'), "earliest")
    assert first == RejectedRange(0, "earliest", '{"ticks":{"0":5}}', 1)


def test_a_batch_without_rejected_records_is_not_read_again() -> None:
    end = {"ticks": {"0": 25}}
    assert rejected_range(progress(3, 0, end, end), "latest") is None
    assert rejected_range(progress(3, None, end, end), "latest") is None  # no-data batch
    assert rejected_range(progress(3, 2, end, None), "latest") is None


def log_batch(checkpoint: Path, batch_id: int, offsets: str, *, committed: bool) -> None:
    """Spark's offset log entry for a batch (and its commit entry), as Spark writes them."""
    (checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    (checkpoint / "offsets" / str(batch_id)).write_text(
        'v1\n{"batchWatermarkMs":0,"batchTimestampMs":0,"conf":{}}\n' + offsets
    )
    if committed:
        (checkpoint / "commits" / str(batch_id)).write_text('v1\n{"nextBatchWatermarkMs":0}')


def test_batches_committed_after_the_last_handled_one_are_read_again(tmp_path: Path) -> None:
    for batch_id in range(5):
        log_batch(tmp_path, batch_id, f'{{"ticks":{{"0":{batch_id * 10}}}}}', committed=True)
    log_batch(tmp_path, 5, '{"ticks":{"0":50}}', committed=False)  # Spark runs it again
    assert committed_gap(tmp_path, 1) == RejectedRange(
        4, '{"ticks":{"0":10}}', '{"ticks":{"0":40}}', 0
    )
    assert committed_gap(tmp_path, 4) is None  # nothing committed since
    assert committed_gap(tmp_path, -1) is None  # nothing handled yet: a new checkpoint
    assert committed_gap(tmp_path / "nowhere", 1) is None
    (tmp_path / "offsets" / "1").unlink()  # purged by Spark: said, not guessed
    assert committed_gap(tmp_path, 1) is None
