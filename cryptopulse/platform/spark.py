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


def connector_jars(settings: Settings) -> list[str]:
    jars = sorted(str(p) for p in settings.spark_jars_dir.glob("*.jar"))
    if not any("spark-sql-kafka" in j for j in jars):
        raise CryptoPulseError(
            f"The Spark Kafka connector jars are missing from {settings.spark_jars_dir}: "
            "run `make setup` (or `cryptopulse setup`)."
        )
    return jars


def sql_conf(settings: Settings) -> dict[str, str]:
    """Settings that suit our job on any master (a spark-submit --conf still wins)."""
    partitions = str(settings.spark.shuffle_partitions)
    return {
        "spark.sql.shuffle.partitions": partitions,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.streaming.metricsEnabled": "true",
        **settings.spark.conf,
    }


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
        explicit = session.sparkContext.getConf()
        for key, value in sql_conf(settings).items():
            if not explicit.contains(key):
                session.conf.set(key, value)
        session.sparkContext.setLogLevel(spark_conf.log_level)
        return session

    builder = (
        SparkSession.builder.appName(app_name)
        .master(spark_conf.master)
        .config("spark.jars", ",".join(connector_jars(settings)))
        .config("spark.driver.memory", spark_conf.driver_memory)
        .config("spark.default.parallelism", str(spark_conf.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in sql_conf(settings).items():
        builder = builder.config(key, value)
    if spark_conf.master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(spark_conf.log_level)
    return session
