"""The one place a SparkSession is built for CryptoPulse jobs.

Under `spark-submit` the session (and its jars) come from spark-submit and these
settings only fill in what it left unset; run directly, we start local Spark with
the Kafka connector jars that `make setup` resolved, so no network is needed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cryptopulse.config import Settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.files import is_url

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


# Hadoop's local file system sets a new file's permissions by starting `chmod` when its native
# library is absent (pyspark ships none): ~20 ms per file here, and each micro-batch writes two
# checkpoint files, each with its checksum file (65 ms of every batch, measured). This one
# sets them through java.nio and keeps the checksums.
LOCAL_FS_JAR = "hadoop-bare-naked-local-fs-"
LOCAL_FS = "com.globalmentor.apache.hadoop.fs.BareLocalFileSystem"
# Spark's default manager for file: paths goes through Hadoop's FileContext, whose local file
# system is always Hadoop's own; this one goes through `fs.file.impl`.
FS_CHECKPOINTS = (
    "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager"
)


def local_fs_conf(settings: Settings, jars: list[str]) -> dict[str, str]:
    """Conf for a local master whose checkpoint is on this machine's disk: Hadoop's file
    system for file: paths without a process per file (none when the jar is missing)."""
    location = settings.spark.checkpoint_location
    on_disk = not is_url(location) or location.startswith("file:")
    jar = next((j for j in jars if Path(j).name.startswith(LOCAL_FS_JAR)), None)
    if not settings.spark.master.startswith("local") or not on_disk or jar is None:
        return {}
    return {
        # On the class path from the launch: spark-submit reads spark.jars through it already.
        "spark.driver.extraClassPath": jar,
        "spark.hadoop.fs.file.impl": LOCAL_FS,
        "spark.sql.streaming.checkpointFileManagerClass": FS_CHECKPOINTS,
    }


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

    jars = connector_jars(settings)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(spark_conf.master)
        .config("spark.jars", ",".join(jars))
        .config("spark.driver.memory", spark_conf.driver_memory)
        .config("spark.default.parallelism", str(spark_conf.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in {**local_fs_conf(settings, jars), **sql_conf(settings)}.items():
        builder = builder.config(key, value)
    if spark_conf.master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(spark_conf.log_level)
    return session
