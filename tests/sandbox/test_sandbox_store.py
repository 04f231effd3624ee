"""The sandbox's store on its own: no sockets, no sleeping. A fake clock stands in for real time."""

from __future__ import annotations

import pytest

from submissions.sandbox.store import (
    DEMO_TOKEN,
    QUOTA_USED_UP_TOKEN,
    REVOKED_TOKEN,
    Account,
    Clock,
    JobSpec,
    RateWindows,
    Store,
    StoreWasReset,
)

V = "https://cdn.example.com/episode.mp4"
A = "https://cdn.example.com/episode-de.wav"
START = 1_700_000_000.0


class FakeTime:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> FakeTime:
    return FakeTime()


@pytest.fixture
def store(ticks: FakeTime) -> Store:
    return Store(
        job_seconds=30.0,
        rate_limit_per_minute=3,
        clock=Clock(wall=lambda: START, monotonic=ticks),
        rate_windows=RateWindows(monotonic=ticks),
    )


def spec(reference_id: str | None = None, video_url: str = V) -> JobSpec:
    return JobSpec(video_url, A, reference_id)


# --------------------------------------------------------------------------- token kinds


def test_the_built_in_tokens_are_one_of_each_kind(store: Store):
    demo, used_up, revoked = (store.account(t) for t in (DEMO_TOKEN, QUOTA_USED_UP_TOKEN, REVOKED_TOKEN))
    assert demo is not None and not demo.quota_used_up and not demo.revoked
    assert used_up is not None and used_up.quota_used_up and not used_up.revoked
    assert revoked is not None and revoked.revoked
    assert store.account("no-such-token") is None
    assert len({demo.name, used_up.name, revoked.name}) == 3


def test_added_accounts_survive_a_reset_and_blank_tokens_are_refused(store: Store):
    store.add_account("team-b", Account("Team B"))
    store.reset()
    assert store.account("team-b") == Account("Team B")
    with pytest.raises(ValueError):
        store.add_account("  ", Account("Nobody"))


# --------------------------------------------------------------------------- jobs and the clock


def test_a_new_job_is_queued_at_the_simulated_now(store: Store):
    job = store.create_job(DEMO_TOKEN, spec("ref-1"))
    assert job.created_at == START
    assert job.duration == 30.0
    assert job.timeline(store.now()) == ("queued", None, None)
    assert store.job(job.id) == job
    assert store.jobs_of(DEMO_TOKEN) == [job] and store.jobs_of(QUOTA_USED_UP_TOKEN) == []


def test_advancing_the_clock_walks_a_job_through_its_life(store: Store):
    job = store.create_job(DEMO_TOKEN, spec())
    store.advance(10)  # a third of 30 s: started
    assert job.timeline(store.now()) == ("processing", START + 10, None)
    store.advance(20)
    assert job.timeline(store.now()) == ("completed", START + 10, START + 30)
    assert store.is_completed(job.id)
    assert store.clock_offset == 30
    with pytest.raises(ValueError):
        store.advance(-1)


def test_real_time_moves_the_simulated_clock_too(store: Store, ticks: FakeTime):
    job = store.create_job(DEMO_TOKEN, spec())
    ticks.now += 29.5
    assert job.timeline(store.now())[0] == "processing"
    ticks.now += 0.5
    assert job.timeline(store.now())[0] == "completed"


def test_a_failing_input_ends_in_failed_with_its_reason(store: Store):
    job = store.create_job(DEMO_TOKEN, spec(video_url="https://cdn.example.com/fail.mp4"))
    store.advance(30)
    assert job.timeline(store.now())[0] == "failed"
    assert job.error_message() == "video URL is not accessible"
    assert not store.is_completed(job.id)


def test_a_forced_status_sticks_and_replaces_the_job(store: Store):
    job = store.create_job(DEMO_TOKEN, spec())
    store.force_status(job.id, "rendering", error_message="never shown")
    store.advance(300)
    forced = store.job(job.id)
    assert forced.timeline(store.now())[0] == "rendering"
    assert job.forced is None  # the value handed out before is unchanged
    with pytest.raises(KeyError):
        store.force_status("no-such-id", "failed")


def test_find_by_id_or_newest_reference_id_on_the_same_account_only(store: Store):
    older = store.create_job(DEMO_TOKEN, spec("shared"))
    newer = store.create_job(DEMO_TOKEN, spec("shared"))
    store.add_account("team-b", Account("Team B"))
    store.create_job("team-b", spec("shared"))
    assert store.find(DEMO_TOKEN, older.id.upper()) == older
    assert store.find(DEMO_TOKEN, "shared") == newer
    assert store.find("team-b", older.id) is None
    assert store.find(DEMO_TOKEN, "missing") is None


def test_pages_count_every_match(store: Store):
    jobs = [store.create_job(DEMO_TOKEN, spec(f"ref-{n % 2}")) for n in range(5)]
    assert store.page(DEMO_TOKEN, limit=2, offset=1) == (jobs[1:3], 5)
    assert store.page(DEMO_TOKEN, limit=10, offset=0, reference_id="ref-1") == ([jobs[1], jobs[3]], 2)
    assert store.page(QUOTA_USED_UP_TOKEN, limit=10, offset=0) == ([], 0)


def test_counts_name_accounts_not_tokens(store: Store):
    store.create_job(DEMO_TOKEN, spec())
    store.advance(10)
    store.create_job(DEMO_TOKEN, spec())
    counts = store.counts(store.now())
    assert counts.total == 2
    assert counts.by_status == {"processing": 1, "queued": 1}
    assert counts.by_account == {"DubDash sandbox demo": 2}


def test_reset_forgets_jobs_and_clock_and_refuses_requests_from_before(store: Store):
    store.create_job(DEMO_TOKEN, spec())
    store.advance(50)
    store.job_seconds, store.rate_limit_per_minute = 1.0, 1
    epoch = store.epoch
    store.reset()
    assert store.jobs_of(DEMO_TOKEN) == [] and store.clock_offset == 0
    assert (store.job_seconds, store.rate_limit_per_minute) == (30.0, 3)
    with pytest.raises(StoreWasReset):
        store.create_job(DEMO_TOKEN, spec(), epoch=epoch)
    assert store.create_job(DEMO_TOKEN, spec(), epoch=store.epoch).account == DEMO_TOKEN


# --------------------------------------------------------------------------- rate windows


def test_the_rate_window_admits_the_limit_then_says_how_long_to_wait(store: Store, ticks: FakeTime):
    assert [store.take_rate_slot(DEMO_TOKEN) for _ in range(3)] == [None, None, None]
    ticks.now += 20.5
    assert store.take_rate_slot(DEMO_TOKEN) == 40  # the first slot frees 60 s after it was taken
    assert store.take_rate_slot("team-b") is None  # every token has its own window
    ticks.now += 39.5  # 60 s after the first three: had the refused request used a slot, only 2 would fit now
    assert [store.take_rate_slot(DEMO_TOKEN) for _ in range(4)] == [None, None, None, 60]
    ticks.now += 59.5
    assert store.take_rate_slot(DEMO_TOKEN) == 1  # under a second left rounds up to 1, never 0


def test_a_window_slides_rather_than_resetting_each_minute(ticks: FakeTime):
    windows = RateWindows(monotonic=ticks)
    for _ in range(2):
        assert windows.take("t", 2) is None
        ticks.now += 30
    assert windows.take("t", 2) is None  # the first send has left the window (60 s ago)
    assert windows.take("t", 2) == 30  # the second, 30 s ago, still counts


def test_no_limit_admits_everything_and_reset_clears_the_windows(store: Store):
    store.rate_limit_per_minute = 0
    assert all(store.take_rate_slot(DEMO_TOKEN) is None for _ in range(100))
    store.rate_limit_per_minute = 1
    assert store.take_rate_slot(DEMO_TOKEN) is None
    assert store.take_rate_slot(DEMO_TOKEN) == 60
    store.reset()
    store.rate_limit_per_minute = 1
    assert store.take_rate_slot(DEMO_TOKEN) is None
