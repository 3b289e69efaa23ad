import hashlib
import json
import shutil
from pathlib import Path

import pytest

from scheduler.settings import SettingsError, load_settings


def test_defaults_follow_the_design(tmp_path: Path) -> None:
    s = load_settings({"LOA_DATA": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'loa.db'}"
    assert str(s.timezone) == "Asia/Ho_Chi_Minh"
    assert s.tts_engine == "auto"


def test_a_secret_key_is_created_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"LOA_DATA": str(tmp_path)}).secret_key
    assert len(first) >= 32
    assert load_settings({"LOA_DATA": str(tmp_path)}).secret_key == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LOA_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("LOA_TTS_ENGINE", "festival", "one of"),
        ("LOA_GRACE_SECONDS", "soon", "whole number"),
        ("LOA_SECRET_KEY", "short", "at least 16"),
        ("LOA_GTTS_TIMEOUT", "fast", "seconds"),
        ("LOA_MQTT_URL", "http://broker", "mqtt://host:1883"),
        ("LOA_MQTT_DEVICE_URL", "broker:1883", "mqtt://host:1883"),
        ("LOA_ENDPOINT_LATE_SECONDS", "2", "at least 10"),
        ("LOA_SWEEP_SECONDS", "0", "at least 1"),
        ("LOA_CLOSE_MARGIN_SECONDS", "-5", "at least 0"),
        ("LOA_RESUME_INTERRUPTED", "maybe", "on or off"),
        ("LOA_PUBLIC_URL", "loa.trieuson.vn", "http://host:8080"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        load_settings({"LOA_DATA": str(tmp_path), name: value})
    assert name in str(raised.value)


def test_devices_are_told_the_broker_without_the_servers_credentials(tmp_path: Path) -> None:
    env = {"LOA_DATA": str(tmp_path), "LOA_MQTT_URL": "mqtt://loa:s3cret@broker.lan:1883"}
    assert load_settings(env).mqtt_device_url == "mqtt://broker.lan:1883"
    env["LOA_MQTT_DEVICE_URL"] = "mqtts://loa.example.vn:8883"
    assert load_settings(env).mqtt_device_url == "mqtts://loa.example.vn:8883"


def test_switches_and_the_public_address_are_read_plainly(tmp_path: Path) -> None:
    env = {"LOA_DATA": str(tmp_path), "LOA_RESUME_INTERRUPTED": "on",
           "LOA_PUBLIC_URL": "https://loa.trieuson.vn/"}  # fmt: skip
    settings = load_settings(env)
    assert settings.resume_interrupted is True
    assert settings.public_url == "https://loa.trieuson.vn"


def test_a_piper_voice_is_checked_at_start(tmp_path: Path) -> None:
    data = Path(__file__).parent / "data"
    model = tmp_path / "vi_VN-test.onnx"
    shutil.copy(data / "piper-test-voice.onnx", model)
    config = json.loads((data / "piper-test-voice.onnx.json").read_text())
    env = {"LOA_DATA": str(tmp_path), "LOA_PIPER_MODEL": str(model)}
    with pytest.raises(SettingsError, match=r"onnx\.json beside the model"):
        load_settings(env)
    (tmp_path / "vi_VN-test.onnx.json").write_text(json.dumps(config))
    good = hashlib.sha256(model.read_bytes()).hexdigest()
    assert load_settings({**env, "LOA_PIPER_SHA256": good}).piper_model == model
    with pytest.raises(SettingsError, match="download it again"):
        load_settings({**env, "LOA_PIPER_SHA256": "0" * 64})
    config["audio"]["sample_rate"] = 8000
    (tmp_path / "vi_VN-test.onnx.json").write_text(json.dumps(config))
    with pytest.raises(SettingsError, match="sample rate 8000"):
        load_settings(env)
