import pytest

from scheduler.status import aggregate, can_move


@pytest.mark.parametrize(
    ("deliveries", "broadcast"),
    [
        ([], None),
        (["scheduled", "scheduled"], "scheduled"),
        (["delivered", "scheduled"], "scheduled"),
        (["delivered", "delivered"], "delivered"),
        (["playing", "delivered"], "playing"),
        (["played", "delivered"], "playing"),
        (["played", "played"], "played"),
        (["played", "missed"], "partial"),
        (["played", "cancelled"], "played"),
        (["interrupted", "interrupted"], "interrupted"),
        (["missed", "missed"], "missed"),
        (["missed", "failed"], "failed"),
        (["cancelled", "cancelled"], "cancelled"),
    ],
)
def test_a_broadcast_status_follows_its_deliveries(
    deliveries: list[str], broadcast: str | None
) -> None:
    assert aggregate(deliveries) == broadcast


def test_a_device_proof_of_play_is_believed_after_the_server_gave_up() -> None:
    assert can_move("missed", "played")
    assert can_move("failed", "playing")


def test_a_played_or_interrupted_delivery_is_final() -> None:
    assert not can_move("played", "failed")
    assert not can_move("interrupted", "playing")
    assert not can_move("playing", "scheduled")
