"""Where the job's checkpoint lives, for the files the driver itself reads and writes there
(the sinks' bookkeeping, the offsets the dead-letter gap check reads back).

A plain folder is a `pathlib.Path`. A Hadoop URL (`hdfs://…`, `s3a://…`, `file://…`) is a
`HadoopPath`: the same few operations through Spark's own Hadoop client and its checkpoint
file manager (atomic replace on HDFS and object stores alike), so the bookkeeping sits next to
Spark's checkpoint and a driver restarted on another host finds both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptopulse.files import is_url, write_atomic

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Spark moved the class in 4.0; the older name for a 3.5 cluster's jars.
FILE_MANAGERS = (
    "org.apache.spark.sql.execution.streaming.checkpointing.CheckpointFileManager",
    "org.apache.spark.sql.execution.streaming.CheckpointFileManager",
)


@dataclass(frozen=True)
class HadoopPath:
    """A file or folder on a Hadoop file system, with the subset of `pathlib.Path` the job
    uses. Missing files raise FileNotFoundError, like a local path's."""

    uri: str
    spark: Any  # the SparkSession: its JVM and Hadoop configuration

    def __truediv__(self, name: str) -> HadoopPath:
        return HadoopPath(f"{self.uri.rstrip('/')}/{name}", self.spark)

    def __str__(self) -> str:
        return self.uri

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    # -- the JVM side ------------------------------------------------------------------

    def _jvm(self) -> Any:
        return self.spark.sparkContext._jvm

    def _conf(self) -> Any:
        # The session's, as a streaming query's: it carries the SQL conf too (the checkpoint
        # file manager class), so these files are written as Spark's checkpoint files are.
        return self.spark._jsparkSession.sessionState().newHadoopConf()

    def _path(self) -> Any:
        return self._jvm().org.apache.hadoop.fs.Path(self.uri)

    def _fs(self) -> Any:
        return self._path().getFileSystem(self._conf())

    def _manager(self) -> Any:
        jvm = self._jvm()
        for name in FILE_MANAGERS:
            cls = jvm
            for part in name.split("."):
                cls = getattr(cls, part)
            try:
                return cls.create(self._path(), self._conf())
            except Exception:
                continue
        raise RuntimeError("this Spark has no CheckpointFileManager")

    # -- pathlib's subset --------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self._fs().exists(self._path()))

    def is_dir(self) -> bool:
        fs, path = self._fs(), self._path()
        return bool(fs.exists(path) and fs.getFileStatus(path).isDirectory())

    def read_bytes(self) -> bytes:
        """The file's bytes, unchecked by a checksum file: a checksummed file system (file://)
        renames the file and then its `.crc`, so a crash between the two leaves a stale
        checksum beside a whole file (the rename is what makes it whole; readers parse it)."""
        path = self._path()
        # A private instance: turning checksums off must not touch Spark's cached one.
        fs = self._jvm().org.apache.hadoop.fs.FileSystem.newInstance(path.toUri(), self._conf())
        try:
            if not fs.exists(path):
                raise FileNotFoundError(self.uri)
            fs.setVerifyChecksum(False)
            stream = fs.open(path)
            try:
                return bytes(self._jvm().org.apache.commons.io.IOUtils.toByteArray(stream))
            finally:
                stream.close()
        finally:
            fs.close()

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def iterdir(self) -> Iterator[HadoopPath]:
        fs, path = self._fs(), self._path()
        if not fs.exists(path):
            raise FileNotFoundError(self.uri)
        for status in fs.listStatus(path):
            yield self / status.getPath().getName()

    def modified_at(self) -> float:
        fs, path = self._fs(), self._path()
        if not fs.exists(path):
            raise FileNotFoundError(self.uri)
        return float(fs.getFileStatus(path).getModificationTime()) / 1000.0

    def write_atomic(self, data: bytes) -> None:
        """Replace the file: readers see the old or the new one, never half of one (the
        stream is written aside and renamed, or put whole on an object store)."""
        manager, path = self._manager(), self._path()
        manager.mkdirs(path.getParent())  # as a local write does
        out = manager.createAtomic(path, True)
        try:
            out.write(bytearray(data))
        except BaseException:
            out.cancel()
            raise
        out.close()


CheckpointPath = Path | HadoopPath


def checkpoint_path(location: str, spark: SparkSession) -> CheckpointPath:
    """A Hadoop URL as a HadoopPath; anything else a local folder."""
    return HadoopPath(location, spark) if is_url(location) else Path(location)


def write_state(path: CheckpointPath, data: bytes, *, durable: bool = False) -> None:
    """Replace a bookkeeping file atomically (`durable`: synced first, where local)."""
    if isinstance(path, HadoopPath):
        path.write_atomic(data)  # closed = persisted on HDFS and object stores
    else:
        write_atomic(path, data, durable=durable)


def modified_at(path: CheckpointPath) -> float:
    """When the file was last written; FileNotFoundError when it is missing."""
    return path.modified_at() if isinstance(path, HadoopPath) else path.stat().st_mtime
