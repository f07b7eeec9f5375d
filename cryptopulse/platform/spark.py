"""The one place a SparkSession is built for CryptoPulse jobs.

Under `spark-submit` the session (and its jars) come from spark-submit and these
settings only fill in what it left unset; run directly, we start local Spark with
the Kafka connector jars that `make setup` resolved, so no network is needed.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from cryptopulse.config import Settings
from cryptopulse.errors import CryptoPulseError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


def connector_jars(settings: Settings) -> list[str]:
    jars = sorted(str(p) for p in settings.spark_jars_dir.glob("*.jar"))
    if not any("spark-sql-kafka" in j for j in jars):
        raise CryptoPulseError(
            f"The Spark Kafka connector jars are missing from {settings.spark_jars_dir}: "
            "run `make setup` (or `cryptopulse setup`)."
        )
    return jars


def spark_session(settings: Settings, app_name: str) -> SparkSession:
    """A SparkSession tuned for a small machine: few shuffle partitions, no UI, quiet logs."""
    # Python workers must run the venv's interpreter (they need our package), and a
    # local driver must not advertise a public address this sandbox cannot route.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    spark_conf = settings.spark
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit: master, jars and memory come from its command line.
        session = SparkSession.builder.appName(app_name).getOrCreate()
        session.sparkContext.setLogLevel(spark_conf.log_level)
        return session
    builder = (
        SparkSession.builder.appName(app_name)
        .master(spark_conf.master)
        .config("spark.jars", ",".join(connector_jars(settings)))
        .config("spark.driver.memory", spark_conf.driver_memory)
        .config("spark.sql.shuffle.partitions", str(spark_conf.shuffle_partitions))
        .config("spark.default.parallelism", str(spark_conf.shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.stateStore.providerClass", ROCKSDB_PROVIDER)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.metricsEnabled", "true")
    )
    if spark_conf.master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(spark_conf.log_level)
    return session
