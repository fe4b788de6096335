"""The time left of counted work, from the rate it has kept."""

from core.progress import Pace, duration


def test_the_time_left_comes_from_the_rate_kept_so_far() -> None:
    now = [100.0]
    pace = Pace(clock=lambda: now[0])
    assert pace.left(0, 10) == ""  # nothing done yet: no rate to go by
    now[0] += 30.0
    assert pace.left(3, 12) == ", about 1 min 30 s left"  # 10 s a unit, 9 units to go
    now[0] += 30.0
    assert pace.left(12, 12) == ""  # done


def test_durations_read_as_a_person_says_them() -> None:
    assert [duration(s) for s in (0.4, 45, 185, 3900)] == ["0 s", "45 s", "3 min 05 s", "1 h 05 min"]
