"""Reports from many endpoints at once: applied together, each batch whole or not at all."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from scheduler import broadcasts as bc
from scheduler import service
from scheduler.context import Loa
from scheduler.errors import Forbidden, NotFound, Unauthorized
from scheduler.models import Endpoint
from tests.conftest import ADMIN, CENTRE, THO_BINH, THO_SON, THO_TIEN
from tests.test_dispatch import broadcast
from tests.test_scheduling import make_bulletin

pytestmark = pytest.mark.both_databases


def test_concurrent_batches_are_applied_together_and_a_bad_one_fails_alone(loa: Loa) -> None:
    codes = [THO_SON, THO_BINH, THO_TIEN]
    endpoints = [service.create_endpoint(loa, ADMIN, c, "Cụm 1", "agent")[0] for c in codes]
    made = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), codes, None)
    deliveries = [b.deliveries[0].id for b in made]
    good = [
        (e.id, [bc.PlayReport(d, "delivered", loa.now())])
        for e, d in zip(endpoints[:2], deliveries[:2], strict=True)
    ]
    # Thọ Tiến's box reports its own delivery and one of Thọ Sơn's: refused whole.
    bad = (
        endpoints[2].id,
        [bc.PlayReport(deliveries[2], "delivered", loa.now()),
         bc.PlayReport(deliveries[0], "delivered", loa.now())],
    )  # fmt: skip
    with ThreadPoolExecutor(3) as pool:
        answers = [pool.submit(service.record_reports, loa, *args) for args in [*good, bad]]
        assert [a.result() for a in answers[:2]] == [1, 1]
        with pytest.raises(Forbidden):
            answers[2].result()
    statuses = [broadcast(loa, b.id).deliveries[0].status for b in made]
    assert statuses == ["delivered", "delivered", "scheduled"]


def test_a_report_for_an_unknown_delivery_is_refused_with_its_reason(loa: Loa) -> None:
    endpoint, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    with pytest.raises(NotFound) as refused:
        service.record_reports(loa, endpoint.id, [bc.PlayReport(999, "started", loa.now())])
    assert refused.value.code == "unknown_delivery"


def test_reports_of_a_switched_off_endpoint_are_refused(loa: Loa) -> None:
    endpoint, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    (made,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    with loa.transaction() as s:
        s.get(Endpoint, endpoint.id).active = False  # type: ignore[union-attr]
    report = bc.PlayReport(made.deliveries[0].id, "delivered", loa.now())
    with pytest.raises(Unauthorized):
        service.record_reports(loa, endpoint.id, [report])
