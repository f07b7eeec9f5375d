from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cryptopulse.config import DEFAULT_COINS, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test sees only the variables it sets, and no config file from the checkout."""
    import os

    for name in list(os.environ):
        if name.startswith("CRYPTOPULSE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_follow_the_design() -> None:
    s = load_settings()
    assert s.kafka.bootstrap == "127.0.0.1:9092"
    assert s.kafka.topics == (
        "crypto_market_data",
        "crypto_market_windows",
        "crypto_market_data_dlq",
        "crypto_market_status",
    )
    configs = s.kafka.topic_configs()
    assert configs["crypto_market_status"]["cleanup.policy"] == "compact"
    assert configs["crypto_market_data"]["max.message.bytes"] == str(256 * 1024)
    assert s.kafka.managed
    assert (s.api.host, s.api.port) == ("127.0.0.1", 8000)
    assert s.api.ingest == "http://127.0.0.1:8000/ingest"
    assert s.spark.window_seconds == 30
    assert s.producer.poll_interval == 30
    assert tuple(s.producer.coins) == DEFAULT_COINS
    assert len(DEFAULT_COINS) == 10


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOPULSE_KAFKA__PORT", "19092")
    monkeypatch.setenv("CRYPTOPULSE_SPARK__WINDOW_SECONDS", "5")
    monkeypatch.setenv("CRYPTOPULSE_PRODUCER__COINS", '["bitcoin", "ethereum"]')
    s = load_settings()
    assert s.kafka.bootstrap == "127.0.0.1:19092"
    assert s.spark.window_seconds == 5
    assert s.producer.coins == ["bitcoin", "ethereum"]


def test_existing_cluster_turns_off_the_local_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOPULSE_KAFKA__BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    s = load_settings()
    assert not s.kafka.managed
    assert s.kafka.bootstrap == "kafka-1:9092,kafka-2:9092"


def test_config_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "custom.toml"
    config.write_text('log_level = "DEBUG"\n[api]\nport = 8123\n[spark]\ntrigger_seconds = 2.5\n')
    monkeypatch.setenv("CRYPTOPULSE_CONFIG", str(config))
    monkeypatch.setenv("CRYPTOPULSE_API__PORT", "8200")
    s = load_settings()
    assert s.log_level == "DEBUG"
    assert s.spark.trigger_seconds == 2.5
    assert s.api.port == 8200


def test_default_config_file_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / "cryptopulse.toml").write_text("[kafka]\npartitions = 6\n")
    assert load_settings().kafka.partitions == 6


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOPULSE_PRODUCER__COINGECKO_API_KEY", "CG-secret-key")
    s = load_settings()
    assert s.producer.coingecko_api_key is not None
    assert s.producer.coingecko_api_key.get_secret_value() == "CG-secret-key"
    assert "CG-secret-key" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CRYPTOPULSE_KAFKA__PORT", "70000"),
        ("CRYPTOPULSE_KAFKA__PORT", "not-a-port"),
        ("CRYPTOPULSE_SPARK__TRIGGER_SECONDS", "0"),
        ("CRYPTOPULSE_PRODUCER__SOURCE", "nasdaq"),
    ],
)
def test_invalid_values_are_rejected_with_the_field_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as excinfo:
        load_settings()
    field = name.removeprefix("CRYPTOPULSE_").lower().split("__")[-1]
    assert field in str(excinfo.value)


def test_explicit_overrides_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRYPTOPULSE_DATA_DIR", "/nowhere")
    s = load_settings(data_dir=tmp_path)
    assert s.data_dir == tmp_path
    assert s.kafka_dir == tmp_path / "kafka"
    assert s.checkpoint_dir == tmp_path / "checkpoints"


def test_extra_spark_conf_is_applied_last(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptopulse.platform.spark import sql_conf

    monkeypatch.setenv(
        "CRYPTOPULSE_SPARK__CONF",
        '{"spark.locality.wait": "0", "spark.sql.shuffle.partitions": "3"}',
    )
    conf = sql_conf(load_settings())
    assert conf["spark.locality.wait"] == "0"
    assert conf["spark.sql.shuffle.partitions"] == "3"  # the user's value wins over ours


def test_local_spark_keeps_its_checkpoint_files_without_a_process_per_file() -> None:
    from cryptopulse.platform.spark import FS_CHECKPOINTS, LOCAL_FS, local_fs_conf

    jars = ["/v/spark-sql-kafka-0-10_2.13-4.2.0.jar", "/v/hadoop-bare-naked-local-fs-0.1.0.jar"]
    settings = load_settings()
    conf = local_fs_conf(settings, jars)
    assert conf == {
        "spark.driver.extraClassPath": "/v/hadoop-bare-naked-local-fs-0.1.0.jar",
        "spark.hadoop.fs.file.impl": LOCAL_FS,
        "spark.sql.streaming.checkpointFileManagerClass": FS_CHECKPOINTS,
    }
    settings.spark.checkpoint_location = "file:///var/lib/cryptopulse"
    assert local_fs_conf(settings, jars) == conf
    # Elsewhere Spark's defaults stay: HDFS and object stores, executors on other hosts.
    settings.spark.checkpoint_location = "hdfs://namenode:8020/cryptopulse"
    assert local_fs_conf(settings, jars) == {}
    settings.spark.checkpoint_location = ""
    settings.spark.master = "spark://127.0.0.1:7077"
    assert local_fs_conf(settings, jars) == {}
    settings.spark.master = "local[2]"
    assert local_fs_conf(settings, jars[:1]) == {}
