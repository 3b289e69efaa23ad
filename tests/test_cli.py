import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from scheduler import planning, service
from scheduler.context import build_loa
from tests.conftest import CENTRE, DATA, THO_SON, make_settings
from tests.test_loudness import ebur128
from tests.test_scheduling import make_bulletin

LOA = str(Path(sys.executable).with_name("loa"))


def run(args: list[str], data: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOA_DATA": str(data), "LOA_TTS_ENGINE": "espeak"}
    return subprocess.run(
        [LOA, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


def test_normalize_reads_stdin_and_writes_the_spoken_form_line_for_line(tmp_path: Path) -> None:
    out = run(["normalize"], tmp_path, "UBND xã họp lúc 7h30.\n\nNgày 2/9 là Quốc khánh.\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "ủy ban nhân dân xã họp lúc bảy giờ ba mươi.",
        "",
        "ngày hai tháng chín là quốc khánh.",
    ]


def test_say_renders_an_mp3_at_broadcast_loudness(tmp_path: Path) -> None:
    text = (DATA / "seed-section-1.txt").read_text(encoding="utf-8")
    out = run(["say", "--engine", "espeak", "-o", str(tmp_path / "out.mp3"), "-"], tmp_path, text)
    assert out.returncode == 0, out.stderr
    assert "engine espeak" in out.stderr
    assert (tmp_path / "out.mp3").read_bytes()[:3] == b"ID3"
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "out.mp3").stat().st_mode & 0o777 == 0o666 & ~umask  # as made by cp
    lufs, peak = ebur128(tmp_path / "out.mp3")
    assert -17.0 <= lufs <= -15.0
    assert peak <= -1.0


def test_say_reads_stdin_and_refuses_empty_text(tmp_path: Path) -> None:
    out = run(["say", "--engine", "espeak", "-o", str(tmp_path / "out.mp3"), "-"], tmp_path, "   ")
    assert out.returncode == 2
    assert "the text is empty" in out.stderr
    assert not (tmp_path / "out.mp3").exists()


def test_only_db_upgrade_creates_the_schema_other_commands_say_so(tmp_path: Path) -> None:
    out = run(["token", "create", "--name", "ci", "--role", "centre"], tmp_path)
    assert out.returncode == 2 and "loa db upgrade" in out.stderr
    out = run(["db", "upgrade"], tmp_path)
    assert out.returncode == 0 and "empty ->" in out.stdout, out.stderr
    again = run(["db", "upgrade"], tmp_path)
    assert again.returncode == 0 and "->" not in again.stdout


def test_token_create_prints_a_token_the_api_accepts(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    out = run(["token", "create", "--name", "ci", "--role", "centre"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("loa_")


def test_token_create_explains_bad_input(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    out = run(["token", "create", "--name", "x", "--role", "operator"], tmp_path)
    assert out.returncode == 2 and "--commune" in out.stderr
    out = run(["token", "create", "--name", "x", "--role", "king"], tmp_path)
    assert out.returncode == 2 and "king" in out.stderr


def test_export_writes_the_as_run_csv_of_a_period(tmp_path: Path, seeded_db: Path) -> None:
    (tmp_path / "loa.db").write_bytes(seeded_db.read_bytes())
    loa = build_loa(make_settings(tmp_path))
    at = loa.now() + timedelta(minutes=10)
    service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], at)
    day = at.astimezone(loa.settings.timezone).date().isoformat()
    loa.close()
    out = run(
        ["export", "--from", day, "--to", day, "--format", "csv", "-o", str(tmp_path / "r.csv")],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    lines = (tmp_path / "r.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 2 and "Xã Thọ Sơn" in lines[1]
    out = run(
        ["export", "--from", day, "--to", "2020-01-01", "-o", str(tmp_path / "r.csv")], tmp_path
    )
    assert out.returncode == 2 and "before" in out.stderr


def test_plan_lists_each_communes_queue_in_play_order(tmp_path: Path, seeded_db: Path) -> None:
    (tmp_path / "loa.db").write_bytes(seeded_db.read_bytes())
    loa = build_loa(make_settings(tmp_path))
    bulletin = make_bulletin(loa)
    tomorrow = (loa.now() + timedelta(days=1)).astimezone(loa.settings.timezone).date()
    rule = planning.Rule(slot_ids=(1, 2), date_from=tomorrow, date_to=tomorrow)
    service.place(loa, CENTRE, bulletin, planning.Targets(communes=(THO_SON,)), rule)
    loa.close()
    out = run(["plan", "--from", tomorrow.isoformat(), "--commune", THO_SON], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(" · ")[1] for line in lines if not line.startswith(" ")] == [
        f"Buổi sáng {tomorrow:%d/%m} 05:30",
        f"Buổi chiều {tomorrow:%d/%m} 17:00",
    ]
    assert "05:30:00" in lines[1] and "Thông báo" in lines[1]
    assert "thông thường" in lines[1] and "đã lên lịch" in lines[1]  # said in Vietnamese
    bad = run(["plan", "--commune", "00000"], tmp_path)
    assert bad.returncode == 2 and "00000" in bad.stderr
