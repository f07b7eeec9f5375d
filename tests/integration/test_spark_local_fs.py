"""A local Spark keeps its checkpoint files through Hadoop's file system without starting a
`chmod` process per file (see platform/spark.py); the files are those Hadoop's own writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from cryptopulse.platform.spark import FS_CHECKPOINTS, LOCAL_FS

pytestmark = pytest.mark.integration


def test_checkpoint_files_are_written_by_the_nio_file_system(
    spark: SparkSession, tmp_path: Path
) -> None:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark._jsparkSession.sessionState().newHadoopConf()  # as a streaming query's
    folder = jvm.org.apache.hadoop.fs.Path(tmp_path.as_uri())
    assert folder.getFileSystem(conf).getClass().getName() == LOCAL_FS
    manager = jvm.org.apache.spark.sql.execution.streaming.checkpointing.CheckpointFileManager
    files = manager.create(folder, conf)
    assert files.getClass().getName() == FS_CHECKPOINTS

    out = files.createAtomic(jvm.org.apache.hadoop.fs.Path(f"{tmp_path.as_uri()}/0"), False)
    out.write(b'{"batchWatermarkMs":0}')
    out.close()

    assert (tmp_path / "0").read_bytes() == b'{"batchWatermarkMs":0}'
    assert (tmp_path / ".0.crc").exists()  # checksums kept, as Hadoop's LocalFileSystem
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "0").stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == [".0.crc", "0"]  # no temporary left
