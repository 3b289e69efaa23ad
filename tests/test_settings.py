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
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        load_settings({"LOA_DATA": str(tmp_path), name: value})
    assert name in str(raised.value)
