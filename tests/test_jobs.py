"""Background jobs: the reports page's exports and a long bulletin's speech run off the
request, on the web process's job pool, with a page that shows their progress; a job is
run once, its failure is told in Vietnamese, and one whose process died shows failed."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from scheduler import bulletins, jobs, reports
from scheduler.auth import Actor
from scheduler.clock import ManualClock
from scheduler.context import Loa, build_loa
from scheduler.models import Bulletin, Job, Priority, Role
from scheduler.settings import Settings
from tests.conftest import CENTRE, REPORTER
from tests.test_panel import Panel
from tests.test_reports import H1_2026, JULY, half_year_db

PERIOD = "from=2026-01-01&to=2026-06-30"
BAOCAO = Actor("user:baocao", Role.REPORTER)


@pytest.fixture(scope="module")
def seeded_db(seeded_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo district after January–June 2026, copied by each test."""
    return half_year_db(seeded_db, tmp_path_factory)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(JULY)


@pytest.fixture(autouse=True)
def pool_closed(app: Flask) -> Iterator[None]:
    """Each test's job pool is shut down after it, and leaves no thread behind."""
    yield
    app.extensions["loa_jobs"].close()
    assert not [t for t in threading.enumerate() if t.name.startswith("loa-job")]


@pytest.fixture
def panel(client: FlaskClient) -> Panel:
    return Panel(client)


def start_export(panel: Panel, fmt: str, query: str = PERIOD) -> int:
    """Press an export button of the reports page; the job's id."""
    page = panel.get(f"/reports?{query}")
    assert f'action="/reports/download.{fmt}?' in page
    r = panel.client.post(f"/reports/download.{fmt}?{query}", data={"csrf_token": panel.csrf()})
    assert r.status_code == 302, r.status_code
    found = re.fullmatch(r"/jobs/(\d+)", r.headers["Location"])
    assert found, r.headers["Location"]
    return int(found[1])


def finished(loa: Loa, job_id: int, timeout: float = 60) -> Job:
    """The job once done or failed (polled: the pool runs it on its own thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with loa.transaction() as s:
            job = s.get(Job, job_id)
            assert job is not None
            if job.status in (jobs.DONE, jobs.FAILED):
                s.expunge(job)
                return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def direct_csv(loa: Loa) -> bytes:
    tz = loa.settings.timezone
    with loa.transaction() as s:
        report = reports.build(s, BAOCAO, reports.period_filter(tz, H1_2026), tz, loa.now())
    return reports.export_bytes(report, "csv", date(2026, 7, 10), loa.settings.report)


def test_an_export_runs_to_done_with_progress_and_its_file_is_the_direct_export(
    panel: Panel, loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[tuple[int, int]] = []
    real = jobs.report_progress

    def observed(session: Any, job_id: int, done: int, total: int, now: Any) -> None:
        written.append((done, total))
        real(session, job_id, done, total, now)

    monkeypatch.setattr(jobs, "report_progress", observed)
    panel.login("baocao", "loa-baocao")
    job_id = start_export(panel, "csv")
    job = finished(loa, job_id)
    assert job.status == jobs.DONE and job.error is None
    rows = len(direct_csv(loa).decode("utf-8-sig").splitlines()) - 1
    assert written[0] == (0, rows) and written[-1] == (rows, rows)
    assert job.done == job.total == rows
    assert job.result_path and job.result_path.startswith("exports/")
    assert (loa.settings.data_dir / job.result_path).is_file()
    assert job.started_at and job.finished_at and job.created_at <= job.started_at

    page = panel.get(f"/jobs/{job_id}")
    assert "Xong lúc" in page and f"đã ghi {rows} / {rows} dòng" in page
    assert f'href="/jobs/{job_id}/download"' in page
    assert 'href="/reports?from=2026-01-01&amp;to=2026-06-30"' in page  # back to the period
    r = panel.client.get(f"/jobs/{job_id}/download")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "nhat-ky-phat-20260101-20260630.csv" in r.headers["Content-Disposition"]
    assert r.data == direct_csv(loa)
    assert "Refresh" not in r.headers


def test_the_export_button_returns_at_once_and_the_job_page_follows_the_export(
    panel: Panel, loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export is held at its first progress report (the test's callback): the POST
    has returned, the job page shows it running and reloads itself, then it finishes."""
    started, go_on = threading.Event(), threading.Event()
    real = jobs.report_progress

    def held(session: Any, job_id: int, done: int, total: int, now: Any) -> None:
        real(session, job_id, done, total, now)
        if not started.is_set():
            session.commit()  # the page can see the progress while the export waits
            started.set()
            assert go_on.wait(30)

    monkeypatch.setattr(jobs, "report_progress", held)
    panel.login("baocao", "loa-baocao")
    job_id = start_export(panel, "xlsx")
    try:
        assert started.wait(30)
        r = panel.client.get(f"/jobs/{job_id}")
        page = r.get_data(as_text=True)
        assert r.status_code == 200 and r.headers["Refresh"] == "2"
        assert "Đang thực hiện" in page and re.search(r"<progress[^>]* value=\"0\"", page)
        assert re.search(r"đã ghi 0 / \d+ dòng", page) and "/download" not in page
    finally:
        go_on.set()
    assert finished(loa, job_id).status == jobs.DONE
    r = panel.client.get(f"/jobs/{job_id}/download")
    assert r.status_code == 200 and r.data.startswith(b"PK")  # a zip: the XLSX


def test_two_processes_claiming_one_job_run_it_once(loa: Loa, settings: Settings) -> None:
    other = build_loa(settings, clock=loa.clock)
    try:
        with loa.transaction() as s:
            job_id = jobs.create(s, REPORTER, jobs.EXPORT, {}, loa.now()).id
        claimed = []
        for ctx in (loa, other, loa):
            with ctx.transaction() as s:
                claimed.append(jobs.claim(s, job_id, ctx.now()))
        assert claimed == [True, False, False]
        with other.transaction() as s:
            assert jobs.claim_next(s, other.now()) is None
    finally:
        other.close()


def test_a_job_left_queued_by_a_stopped_process_runs_when_its_page_is_opened(
    panel: Panel, loa: Loa
) -> None:
    params = {"format": "csv", "from": "2026-01-01", "to": "2026-06-30", "commune": None,
              "topic": None, "lang": "vi", "issued": "2026-07-10"}  # fmt: skip
    with loa.transaction() as s:  # queued by a process that stopped before running it
        job_id = jobs.create(s, BAOCAO, jobs.EXPORT, params, loa.now()).id
    panel.login("baocao", "loa-baocao")
    panel.get(f"/jobs/{job_id}")
    assert finished(loa, job_id).status == jobs.DONE


def test_a_failing_export_records_its_error_and_the_page_says_it_in_vietnamese(
    panel: Panel, loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> bytes:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reports, "export_bytes", broken)
    panel.login("baocao", "loa-baocao")
    job = finished(loa, start_export(panel, "docx"))
    assert job.status == jobs.FAILED and job.error_code == "job_failed"
    assert job.error and "No space left on device" in job.error and job.result_path is None
    page = panel.get(f"/jobs/{job.id}")
    assert "Không hoàn thành được công việc do lỗi trong hệ thống." in page
    assert "No space left on device" in page  # the detail, for whoever fixes it
    assert panel.client.get(f"/jobs/{job.id}/download").status_code == 404
    panel.get("/lang/en")
    assert "No space left on device" in panel.get(f"/jobs/{job.id}")


def test_a_running_job_silent_for_ten_minutes_is_shown_failed(
    panel: Panel, loa: Loa, clock: ManualClock
) -> None:
    with loa.transaction() as s:
        job_id = jobs.create(s, BAOCAO, jobs.EXPORT, {"format": "csv"}, loa.now()).id
        assert jobs.claim(s, job_id, loa.now())  # a process took it, then died
    clock.advance(9 * 60)
    panel.login("baocao", "loa-baocao")
    assert "Đang thực hiện" in panel.get(f"/jobs/{job_id}")
    clock.advance(2 * 60)
    r = panel.client.get(f"/jobs/{job_id}")
    page = r.get_data(as_text=True)
    assert "quá 10 phút không có tiến độ" in page and "Refresh" not in r.headers
    with loa.transaction() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == jobs.FAILED and job.error_code == "job_stale"
        with pytest.raises(jobs.JobLost):  # the lost process cannot bring it back
            jobs.report_progress(s, job_id, 10, 20, loa.now())


def test_exported_files_are_deleted_after_a_week_and_the_page_says_so(
    panel: Panel, loa: Loa, clock: ManualClock
) -> None:
    panel.login("baocao", "loa-baocao")
    old = finished(loa, start_export(panel, "csv"))
    clock.advance(6 * 86400)
    recent = finished(loa, start_export(panel, "csv"))  # the old file is 6 days old: kept
    assert (loa.settings.data_dir / str(old.result_path)).is_file()
    clock.advance(2 * 86400)
    finished(loa, start_export(panel, "csv"))  # a new export cleans what is over a week old
    assert not (loa.settings.data_dir / str(old.result_path)).exists()
    assert (loa.settings.data_dir / str(recent.result_path)).is_file()
    page = panel.get(f"/jobs/{old.id}")
    assert "được giữ 7 ngày; tệp này đã bị xoá" in page
    assert f"/jobs/{old.id}/download" not in page
    assert panel.client.get(f"/jobs/{old.id}/download").status_code == 404
    assert f"/jobs/{recent.id}/download" in panel.get(f"/jobs/{recent.id}")


def test_only_the_owner_and_administrators_see_a_job(
    panel: Panel, loa: Loa, client: FlaskClient
) -> None:
    with loa.transaction() as s:
        job_id = jobs.create(s, BAOCAO, jobs.EXPORT, {"format": "csv"}, loa.now()).id
    panel.login("thoson", "loa-thoson")
    assert client.get(f"/jobs/{job_id}").status_code == 404
    assert client.get(f"/jobs/{job_id}/download").status_code == 404
    panel.post("/logout", {})
    panel.login("admin", "loa-admin")
    assert client.get(f"/jobs/{job_id}").status_code == 200


def test_an_operator_exports_only_their_commune(panel: Panel, loa: Loa) -> None:
    panel.login("thoson", "loa-thoson")
    csrf = {"csrf_token": panel.csrf()}
    r = panel.client.post(f"/reports/download.csv?{PERIOD}&commune=15670", data=csrf)
    assert r.status_code == 403
    job = finished(loa, start_export(panel, "csv"))
    assert job.status == jobs.DONE and job.result_path
    data = (loa.settings.data_dir / job.result_path).read_text("utf-8-sig")
    assert "Xã Thọ Sơn" in data and "Xã Thọ Bình" not in data


def test_a_long_bulletin_is_read_aloud_in_a_job(panel: Panel, loa: Loa) -> None:
    text = "Ủy ban nhân dân xã thông báo lịch tiếp công dân trong tháng.\n" * 40
    with loa.transaction() as s:
        b = bulletins.create_bulletin(
            s, CENTRE, title="Thông báo dài", text=text, topic="CCHC",
            priority=Priority.NORMAL, now=loa.now(), max_chars=20000,
        )  # fmt: skip
        b.engine = "espeak"  # never the network
        bulletin_id = b.id
    assert len(text) > 2000
    panel.login("trungtam", "loa-trungtam")
    r = panel.client.post(
        f"/bulletins/{bulletin_id}/render", data={"csrf_token": panel.csrf(), "engine": "espeak"}
    )
    assert r.status_code == 302 and r.headers["Location"].startswith("/jobs/")
    job = finished(loa, int(r.headers["Location"].rsplit("/", 1)[1]), timeout=120)
    assert job.status == jobs.DONE, job.error
    with loa.transaction() as s:
        assert s.scalar(select(Bulletin.audio_id).where(Bulletin.id == bulletin_id))
    page = panel.get(f"/jobs/{job.id}")
    assert "Tạo giọng đọc cho bản tin dài" in page and "Mở bản tin" in page
    assert "Bản tin dài được tạo giọng đọc ở chế độ nền" in panel.get(f"/bulletins/{bulletin_id}")


def test_progress_is_written_about_every_percent_and_at_the_end(
    loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []
    real = jobs.report_progress

    def counted(session: Any, job_id: int, done: int, total: int, now: Any) -> None:
        written.append(done)
        real(session, job_id, done, total, now)

    monkeypatch.setattr(jobs, "report_progress", counted)
    with loa.transaction() as s:
        job_id = jobs.create(s, BAOCAO, jobs.EXPORT, {}, loa.now()).id
        assert jobs.claim(s, job_id, loa.now())
    progress = jobs.Reporter(loa, job_id)
    for done in (*range(0, 408_070, 1_000), 408_070, 408_070):
        progress(done, 408_070)
    assert len(written) < 110 and written[0] == 0 and written[-1] == 408_070
    assert written.count(408_070) == 1
    stop = threading.Event()
    stop.set()
    with pytest.raises(jobs.Stopping):  # the process is stopping: the job goes back
        jobs.Reporter(loa, job_id, stop)(1, 2)
