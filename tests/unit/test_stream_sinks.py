from __future__ import annotations

import orjson

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
