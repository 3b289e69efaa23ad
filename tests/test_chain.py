"""The as-run log's hash chain: `loa verify` finds any record edited, inserted or removed,
even straight in the database, and says which."""

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from scheduler import chain
from scheduler.context import Loa
from tests.conftest import THO_BINH, THO_SON, THO_TIEN, Api, later

pytestmark = pytest.mark.both_databases


def a_morning(api: Api, loa: Loa) -> dict[str, int]:
    """Three broadcasts: one aired (operator), one not aired (with a reason), one cancelled."""
    bulletin = api.approved_bulletin()
    ids = {}
    for name, code in (("aired", THO_SON), ("not_aired", THO_BINH), ("cancelled", THO_TIEN)):
        (b,) = api.post(
            "/broadcasts", {"bulletin_id": bulletin, "communes": [code], "at": later(loa, 60)}
        ).json
        ids[name] = b["id"]
    assert api.post(f"/broadcasts/{ids['cancelled']}/cancel").status_code == 200
    loa.clock.advance(120)  # type: ignore[attr-defined]
    assert api.post(f"/broadcasts/{ids['aired']}/confirm", {"aired": True}).status_code == 200
    r = api.post(f"/broadcasts/{ids['not_aired']}/confirm", {"aired": False, "reason": "mất điện"})
    assert r.status_code == 200
    return ids


def tamper(loa: Loa, sql: str, **params: Any) -> None:
    """An edit made straight in the database, past Loa (sqlite3 on the file itself)."""
    url = loa.settings.database_url
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.execute(sql, params)
    else:
        with loa.engine.begin() as conn:
            conn.execute(text(sql), params)


def verdict(loa: Loa, expect: str | None = None) -> chain.Verdict:
    chain.seal_all(loa.transaction)
    with loa.transaction() as session:
        return chain.verify(session, expect)


def test_an_untouched_log_is_intact_and_its_head_is_the_last_record(api: Api, loa: Loa) -> None:
    a_morning(api, loa)
    v = verdict(loa)
    assert v.ok and v.unsealed == 0 and v.sealed >= 6, v
    with loa.transaction() as session:
        assert chain.head(session) == (v.sealed, v.head)
    assert verdict(loa, expect=v.head).ok  # sealing again changes nothing


def test_a_history_row_edited_in_the_database_is_named(api: Api, loa: Loa) -> None:
    ids = a_morning(api, loa)
    verdict(loa)
    tamper(
        loa,
        "UPDATE broadcast_events SET reason = 'đã phát' WHERE broadcast_id = :b "
        "AND reason = 'mất điện'",
        b=ids["not_aired"],
    )
    v = verdict(loa)
    assert not v.ok and v.problem is not None
    assert f"of broadcast {ids['not_aired']}) was edited or inserted" in v.problem


def test_a_history_row_deleted_in_the_database_is_missed(api: Api, loa: Loa) -> None:
    ids = a_morning(api, loa)
    verdict(loa)
    tamper(loa, "DELETE FROM broadcast_events WHERE broadcast_id = :b", b=ids["cancelled"])
    v = verdict(loa)
    assert not v.ok and v.problem is not None and "is missing (deleted)" in v.problem


def test_a_finished_broadcasts_times_edited_in_the_database_are_caught(api: Api, loa: Loa) -> None:
    ids = a_morning(api, loa)
    verdict(loa)
    tamper(
        loa,
        "UPDATE broadcasts SET started_at = scheduled_at, confirmed_by = 'user:someone' "
        "WHERE id = :b",
        b=ids["not_aired"],
    )
    v = verdict(loa)
    assert not v.ok and v.problem is not None
    assert f"broadcast {ids['not_aired']} was edited after its last record" in v.problem
    assert "confirmed_by 'user:someone', recorded 'token:test'" in v.problem


def test_the_tail_removed_is_caught_against_a_head_printed_earlier(api: Api, loa: Loa) -> None:
    a_morning(api, loa)
    printed = verdict(loa).head
    tamper(loa, "DELETE FROM broadcast_events WHERE seq = (SELECT MAX(seq) FROM broadcast_events)")
    assert verdict(loa).ok  # alone, a shorter chain looks whole
    v = verdict(loa, expect=printed)
    assert not v.ok and v.problem is not None and "records were removed" in v.problem


def test_two_sealers_at_once_make_one_chain(api: Api, loa: Loa) -> None:
    a_morning(api, loa)
    threads = [threading.Thread(target=chain.seal_all, args=(loa.transaction,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verdict(loa).ok


def test_loa_verify_exits_0_when_intact_and_1_naming_the_broken_record(api: Api, loa: Loa) -> None:
    ids = a_morning(api, loa)
    env = {**os.environ, "LOA_DATA": str(loa.settings.data_dir),
           "LOA_DATABASE_URL": loa.settings.database_url}  # fmt: skip
    command = [str(Path(sys.executable).with_name("loa")), "verify"]
    ok = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("intact: ")
    tamper(loa, "UPDATE broadcasts SET status = 'played' WHERE id = :b", b=ids["not_aired"])
    broken = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    assert f"BROKEN: broadcast {ids['not_aired']} was edited" in broken.stderr
