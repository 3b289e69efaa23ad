"""Settings read once from the environment; parsed strictly, with clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENGINES = ("auto", "gtts", "espeak")
LANGUAGES = ("vi", "en")


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class ReportSettings:
    """Who issues the DOCX report (Nghị định 30/2020 header and signature block)."""

    parent_body: str = "UBND HUYỆN TRIỆU SƠN"
    issuer: str = "TRUNG TÂM VĂN HÓA, THÔNG TIN, THỂ THAO VÀ DU LỊCH"
    number_prefix: str = "BC-TTVHTTDL"  # "Số: …/BC-TTVHTTDL"
    place: str = "Triệu Sơn"
    signer_title: str = "GIÁM ĐỐC"
    signer_name: str = ""  # empty: left for the signer to write
    recipients: tuple[str, ...] = (
        "UBND huyện (để b/c)",
        "Phòng Văn hóa và Thông tin huyện",
        "Phòng Nội vụ huyện",
        "Lưu: VT",
    )


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    timezone: ZoneInfo
    secret_key: str
    tts_engine: str = "auto"
    gtts_timeout: float = 8.0
    grace_seconds: int = 300
    # How often a scheduler looks for broadcasts that no wake-up announced (made by
    # another process on SQLite) and closes those past their end.
    sweep_seconds: int = 20
    # How long after a broadcast's last possible end its endpoints' reports may still
    # arrive; then the ones that never reported are recorded missed.
    close_margin_seconds: int = 30
    language: str = "vi"
    web_threads: int = 16
    horizon_hours: int = 48
    plan_days: int = 14  # placements become broadcast rows this many days ahead
    piper_model: Path | None = None
    paragraph_pause_ms: int = 700
    max_chars: int = 20000
    mqtt_url: str | None = None
    # The broker as devices reach it (told to agents in their schedule): never the
    # server's own credentials. Default: LOA_MQTT_URL without its user and password.
    mqtt_device_url: str | None = None
    # An endpoint is late after this long without a heartbeat, down after the second.
    endpoint_late_seconds: int = 90
    endpoint_down_seconds: int = 300
    # A broadcast with no device proof this long after its time asks the commune operator;
    # unconfirmed this long, it is escalated to the centre.
    confirm_after_minutes: int = 30
    escalate_after_minutes: int = 240
    # After an emergency, the rest of what it interrupted plays as a new broadcast.
    resume_interrupted: bool = False
    # How devices and listeners reach this server (e.g. http://loa.trieuson.vn:8080):
    # the audio URLs in MQTT `play` commands are absolute with it. None: paths only.
    public_url: str | None = None
    report: ReportSettings = field(default_factory=ReportSettings)
    # A bulletin is approved by someone other than its author.
    four_eyes: bool = False
    # Off: text is never sent to an outside service (gTTS); speech is made on the server.
    online_speech: bool = True

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def jingle_dir(self) -> Path:
        return self.data_dir / "jingles"


def _int(env: dict[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "on", "true", "yes"):
        return True
    if raw in ("0", "off", "false", "no"):
        return False
    raise SettingsError(f"{name} must be on or off, got {raw!r}")


def _choice(env: dict[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _existing_file(env: dict[str, str], name: str) -> Path | None:
    raw = env.get(name)
    if not raw:
        return None
    path = Path(raw).expanduser().resolve()
    if not path.is_file():
        raise SettingsError(f"{name}: no file at {path}")
    return path


PIPER_RATES = (16000, 22050, 24000)  # what piper's voices are made at


def _piper_model(env: dict[str, str]) -> Path | None:
    """LOA_PIPER_MODEL checked at start: the .onnx and its .onnx.json beside it, a sample
    rate piper voices have, and its SHA-256 when LOA_PIPER_SHA256 gives one (a model
    copied by hand onto a district server is easily the wrong or a truncated file)."""
    model = _existing_file(env, "LOA_PIPER_MODEL")
    if model is None:
        return None
    config = model.with_name(model.name + ".json")
    try:
        rate = json.loads(config.read_text(encoding="utf-8"))["audio"]["sample_rate"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(
            f"LOA_PIPER_MODEL: {config.name} beside the model is missing or unreadable ({exc})"
        ) from None
    if rate not in PIPER_RATES:
        raise SettingsError(
            f"LOA_PIPER_MODEL: sample rate {rate!r} in {config.name}; piper voices are "
            f"{', '.join(map(str, PIPER_RATES))} Hz"
        )
    expected = (env.get("LOA_PIPER_SHA256") or "").strip().lower()
    if expected:
        digest = hashlib.sha256()
        with model.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise SettingsError(
                f"LOA_PIPER_MODEL: {model.name} has SHA-256 {digest.hexdigest()}, not the "
                f"{expected} of LOA_PIPER_SHA256; download it again"
            )
    return model


def _device_url(env: dict[str, str], server_url: str | None) -> str | None:
    explicit = _mqtt_url(env, "LOA_MQTT_DEVICE_URL")
    if explicit or not server_url:
        return explicit
    parts = urlsplit(server_url)
    host = parts.hostname or ""
    return parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")).geturl()


def _mqtt_url(env: dict[str, str], name: str = "LOA_MQTT_URL") -> str | None:
    raw = env.get(name) or ""
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise SettingsError(f"{name} must look like mqtt://host:1883, got {raw!r}")
    return raw


def _public_url(env: dict[str, str]) -> str | None:
    raw = (env.get("LOA_PUBLIC_URL") or "").strip().rstrip("/")
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise SettingsError(f"LOA_PUBLIC_URL must look like http://host:8080, got {raw!r}")
    return raw


def _report(env: dict[str, str]) -> ReportSettings:
    """LOA_REPORT_*: the report's issuing body, signer and place; recipients split by ';'."""
    d = ReportSettings()
    recipients = env.get("LOA_REPORT_RECIPIENTS")
    return ReportSettings(
        parent_body=env.get("LOA_REPORT_PARENT_BODY") or d.parent_body,
        issuer=env.get("LOA_REPORT_ISSUER") or d.issuer,
        number_prefix=env.get("LOA_REPORT_NUMBER_PREFIX") or d.number_prefix,
        place=env.get("LOA_REPORT_PLACE") or d.place,
        signer_title=env.get("LOA_REPORT_SIGNER_TITLE") or d.signer_title,
        signer_name=env.get("LOA_REPORT_SIGNER_NAME", d.signer_name),
        recipients=tuple(r.strip() for r in recipients.split(";") if r.strip())
        if recipients
        else d.recipients,
    )


def _secret(env: dict[str, str], data_dir: Path) -> str:
    """LOA_SECRET_KEY, or a random key kept in the data directory (created once)."""
    key = env.get("LOA_SECRET_KEY", "")
    if key:
        if len(key) < 16:
            raise SettingsError("LOA_SECRET_KEY must be at least 16 characters")
        return key
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(key)
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build Settings from LOA_* variables (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("LOA_DATA") or "./var").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    tz_name = env.get("LOA_TIMEZONE") or "Asia/Ho_Chi_Minh"
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"LOA_TIMEZONE: unknown time zone {tz_name!r}") from None
    timeout_raw = env.get("LOA_GTTS_TIMEOUT") or "8"
    try:
        gtts_timeout = float(timeout_raw)
    except ValueError:
        raise SettingsError(f"LOA_GTTS_TIMEOUT must be seconds, got {timeout_raw!r}") from None
    return Settings(
        data_dir=data_dir,
        database_url=env.get("LOA_DATABASE_URL") or f"sqlite:///{data_dir / 'loa.db'}",
        timezone=timezone,
        secret_key=_secret(env, data_dir),
        tts_engine=_choice(env, "LOA_TTS_ENGINE", "auto", ENGINES),
        gtts_timeout=gtts_timeout,
        grace_seconds=_int(env, "LOA_GRACE_SECONDS", 300, 0),
        sweep_seconds=_int(env, "LOA_SWEEP_SECONDS", 20, 1),
        close_margin_seconds=_int(env, "LOA_CLOSE_MARGIN_SECONDS", 30, 0),
        language=_choice(env, "LOA_LANGUAGE", "vi", LANGUAGES),
        web_threads=_int(env, "LOA_WEB_THREADS", 16, 2),
        horizon_hours=_int(env, "LOA_HORIZON_HOURS", 48, 1),
        plan_days=_int(env, "LOA_PLAN_DAYS", 14, 1),
        piper_model=_piper_model(env),
        paragraph_pause_ms=_int(env, "LOA_PARAGRAPH_PAUSE_MS", 700, 0),
        max_chars=_int(env, "LOA_MAX_CHARS", 20000, 100),
        mqtt_url=_mqtt_url(env),
        mqtt_device_url=_device_url(env, _mqtt_url(env)),
        endpoint_late_seconds=_int(env, "LOA_ENDPOINT_LATE_SECONDS", 90, 10),
        endpoint_down_seconds=_int(env, "LOA_ENDPOINT_DOWN_SECONDS", 300, 20),
        confirm_after_minutes=_int(env, "LOA_CONFIRM_AFTER_MINUTES", 30, 1),
        escalate_after_minutes=_int(env, "LOA_ESCALATE_AFTER_MINUTES", 240, 1),
        resume_interrupted=_bool(env, "LOA_RESUME_INTERRUPTED", False),
        public_url=_public_url(env),
        report=_report(env),
        four_eyes=_bool(env, "LOA_FOUR_EYES", False),
        online_speech=_bool(env, "LOA_ONLINE_SPEECH", True),
    )
