"""The streaming queries' events, as the JSON Spark writes for them.

PySpark's own `StreamingQueryListener` turns each progress event into Python objects field by
field: dozens of py4j calls per batch, some of which make the JVM search its class path for a
name (measured with a profiler: 7 % of the Spark JVM's CPU at 50,000 ticks/s, on the listener
bus). This listener asks for one thing per event, the progress's JSON, and parses it here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("cryptopulse.stream")

Progress = dict[str, Any]


class ProgressListener:
    """Implements Spark's `PythonStreamingQueryListener` (through py4j): logs each query's start
    and end, and hands each progress, parsed from its JSON, to `on_progress`."""

    def __init__(self, on_progress: Callable[[Progress], None]) -> None:
        self.on_progress = on_progress
        self._wrapper: Any = None

    # Called by the JVM, on Spark's listener bus thread, where an exception would only reach
    # py4j's log: the progress handler, which does the job's work, logs its own.
    def onQueryStarted(self, event: Any) -> None:
        log.info("query %s started (id %s)", event.name(), event.id().toString())

    def onQueryProgress(self, event: Any) -> None:
        try:
            self.on_progress(orjson.loads(event.progress().json()))
        except Exception:
            log.exception("could not handle a query's progress")

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        error = event.exception()  # a Scala Option[String]
        if error.isDefined():
            log.error("query %s failed: %s", event.id().toString(), error.get().splitlines()[0])
        else:
            log.info("query %s stopped", event.id().toString())

    class Java:  # py4j's marker for the Java interfaces this implements
        implements: ClassVar[list[str]] = [
            "org.apache.spark.sql.streaming.PythonStreamingQueryListener"
        ]

    def add_to(self, spark: SparkSession) -> None:
        """Register with the session's query manager (starting py4j's callback server)."""
        from pyspark.java_gateway import ensure_callback_server_started

        context = spark.sparkContext
        ensure_callback_server_started(context._gateway)  # type: ignore[no-untyped-call]
        jvm = context._jvm
        assert jvm is not None
        self._wrapper = jvm.org.apache.spark.sql.streaming.PythonStreamingQueryListenerWrapper(self)
        spark._jsparkSession.streams().addListener(self._wrapper)

    def remove_from(self, spark: SparkSession) -> None:
        if self._wrapper is not None:
            spark._jsparkSession.streams().removeListener(self._wrapper)
            self._wrapper = None
