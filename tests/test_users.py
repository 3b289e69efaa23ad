"""User administration: the administrator creates users, gives an operator several
communes, disables an account, sets a new password; an operator of two communes sees
and confirms both."""

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from scheduler import service, users
from scheduler.auth import login, user_actor
from scheduler.context import Loa
from scheduler.errors import Conflict, Forbidden, InvalidInput
from scheduler.models import User
from tests.conftest import ADMIN, CENTRE, THO_BINH, THO_SON, THO_TIEN, Api, later
from tests.test_panel import Panel


def test_an_operator_of_two_communes_sees_and_confirms_both_and_no_third(
    api: Api, loa: Loa
) -> None:
    with loa.transaction() as session:
        users.create_user(
            session, ADMIN, username="cumxa", display_name="Cụm xã Thọ", password="mat-khau-1",
            role="operator", communes=[THO_SON, THO_BINH], now=loa.now(),
        )  # fmt: skip
    bulletin = api.approved_bulletin()
    made = {
        code: api.post(
            "/broadcasts", {"bulletin_id": bulletin, "communes": [code], "at": later(loa, 60)}
        ).json[0]["id"]
        for code in (THO_SON, THO_BINH, THO_TIEN)
    }
    loa.clock.advance(120)  # type: ignore[attr-defined]
    with loa.transaction() as session:
        user = login(session, "cumxa", "mat-khau-1")
        assert user is not None
        operator = user_actor(user)
    for code in (THO_SON, THO_BINH):
        b = service.confirm_broadcast(loa, operator, made[code], aired=True, reason=None, at=None)
        assert b.status == "played"
    with pytest.raises(Forbidden):
        service.confirm_broadcast(loa, operator, made[THO_TIEN], aired=True, reason=None, at=None)


def test_the_admin_disables_a_user_and_sets_a_new_password(loa: Loa) -> None:
    with loa.transaction() as session:
        u = users.create_user(
            session, ADMIN, username="moi", display_name="", password="mat-khau-1",
            role="reporter", now=loa.now(),
        )  # fmt: skip
        users.reset_password(session, ADMIN, u.id, "mat-khau-2", loa.now())
        assert login(session, "moi", "mat-khau-1") is None
        assert login(session, "moi", "mat-khau-2") is not None
        users.update_user(
            session, ADMIN, u.id, display_name="Mới", role="reporter", communes=[],
            active=False, now=loa.now(),
        )  # fmt: skip
        assert login(session, "moi", "mat-khau-2") is None


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"password": "ngan"}, InvalidInput),
        ({"role": "operator"}, InvalidInput),  # no commune
        ({"role": "chief"}, InvalidInput),
        ({"username": "admin"}, Conflict),
    ],
)
def test_bad_users_are_refused_and_nothing_is_written(
    loa: Loa, fields: dict[str, str], error: type[Exception]
) -> None:
    values = {"username": "moi", "display_name": "", "password": "mat-khau-1", "role": "centre"}
    with pytest.raises(error), loa.transaction() as session:
        users.create_user(session, ADMIN, **{**values, **fields}, now=loa.now())  # type: ignore[arg-type]
    with loa.transaction() as session:
        assert session.scalar(select(User).where(User.username == "moi")) is None


def test_only_the_admin_manages_users_and_never_locks_themselves_out(loa: Loa) -> None:
    with loa.transaction() as session:
        with pytest.raises(Forbidden):
            users.listing(session, CENTRE)
        admin = session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
        with pytest.raises(Conflict):
            users.update_user(
                session, ADMIN, admin.id, display_name="", role="admin", communes=[],
                active=False, now=loa.now(),
            )  # fmt: skip


def test_the_panel_creates_an_operator_with_communes_and_keeps_a_failed_form(
    client: FlaskClient,
) -> None:
    panel = Panel(client)
    panel.login("admin", "loa-admin")
    page = panel.post(
        "/users",
        {"username": "thobinh", "display_name": "Đài xã Thọ Bình", "password": "mat-khau-1",
         "role": "operator", "communes": [THO_BINH]},
    )  # fmt: skip
    assert "Đã tạo người dùng." in page and "Xã Thọ Bình" in page
    r = client.post(
        "/users",
        data={"username": "thieu", "display_name": "Thiếu xã", "password": "mat-khau-1",
              "role": "operator", "csrf_token": panel.csrf()},
    )  # fmt: skip
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "Cán bộ xã cần được giao ít nhất một xã." in html
    assert 'value="Thiếu xã"' in html
    panel.post("/logout", {})
    panel.login("trungtam", "loa-trungtam")
    assert client.get("/users").status_code == 403
