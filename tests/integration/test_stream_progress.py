"""The job's progress listener on a real Spark query: each batch's progress arrives as the
JSON Spark writes, and the query's start, failure and stop are logged."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

from cryptopulse.stream.progress import Progress, ProgressListener
from tests.waiting import wait_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.timeout(180)


def test_each_batch_progress_arrives_parsed_and_start_and_stop_are_logged(
    spark: SparkSession, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Progress] = []
    listener = ProgressListener(seen.append)
    listener.add_to(spark)
    caplog.set_level(logging.INFO, logger="cryptopulse.stream")
    query = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", 50)
        .load()
        .writeStream.queryName("progress-test")
        .format("noop")
        .trigger(processingTime="200 milliseconds")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    try:
        wait_for(lambda: any(p.get("numInputRows") for p in seen), 60, "a batch with rows")
    finally:
        query.stop()
    try:
        wait_for(lambda: "query progress-test started" in caplog.text, 30, "the start logged")
        wait_for(lambda: f"query {query.id} stopped" in caplog.text, 30, "the stop logged")
    finally:
        listener.remove_from(spark)
    progress = next(p for p in seen if p.get("numInputRows"))
    assert progress["name"] == "progress-test"
    assert progress["id"] == query.id
    assert isinstance(progress["batchId"], int)
    assert progress["sources"][0]["numInputRows"] == progress["numInputRows"]
    # the batch ids come in order, each once
    ids = [p["batchId"] for p in seen]
    assert ids == sorted(set(ids))


def test_a_failed_query_is_logged_with_its_error(
    spark: SparkSession, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    listener = ProgressListener(lambda _progress: None)
    listener.add_to(spark)
    caplog.set_level(logging.INFO, logger="cryptopulse.stream")

    def fail(_batch: DataFrame, batch_id: int) -> None:
        raise RuntimeError(f"batch {batch_id} refused on purpose")

    query = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", 10)
        .load()
        .writeStream.queryName("progress-failure-test")
        .foreachBatch(fail)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    try:
        wait_for(lambda: not query.isActive, 60, "the query to fail")
        wait_for(lambda: f"query {query.id} failed" in caplog.text, 30, "the failure logged")
    finally:
        query.stop()
        listener.remove_from(spark)
    line = next(r for r in caplog.records if f"query {query.id} failed" in r.getMessage())
    assert line.levelno == logging.ERROR
    assert "\n" not in line.getMessage()  # the error's first line only
