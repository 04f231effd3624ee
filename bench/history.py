"""The team-side benchmark: 100,000 jobs across 20 members. Server time (p50, p95) and SQL queries of the
team history (unfiltered, member + state, a search, a page deep down), the detail page and the admin
changelist, beside a trivial login-required view measured in the same rounds.

The trivial view is measured in two forms: a bare HttpResponse("ok"), and the same view rendering the
site's layout around no data. Every page of DubDash is a login-required page in that layout (navigation
by permission, banners, a logout form with its CSRF token), so the layout form is what a trivial view
costs here and the 3x target is measured against it; the ratio to the bare response is printed beside it.

Imported by bench/run.py (which has set Django up); returns plain tuples that run.py turns into rows."""

from __future__ import annotations

import math
import random
import statistics
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpResponse
from django.template import engines
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import include, path
from django.utils import timezone

from submissions import roles
from submissions.jobs.fingerprints import inputs_fingerprint
from submissions.models import Batch, Submission

JOBS = 100_000
MEMBERS = 20
ROUNDS = 300  # requests per page: one round asks for every page once, in a shuffled order
ADMIN_REQUESTS = 40  # the admin changelist is measured on its own: at about 100 ms a request, 40 are enough
MAX_QUERIES = 8
MAX_RATIO = 3.0  # team history p95 / trivial view p95 (site layout)
MAX_ADMIN_P95_MS = 200.0
LANGUAGES = ["de", "fr", "es", "it", "ja", "pt", "ko", "zh-hans", "nl", "pl", "sv", "tr"]
STATES = [Submission.State.COMPLETED] * 8 + [Submission.State.FAILED, Submission.State.PROCESSING]


def trivial(request):
    return HttpResponse("ok")  # behind the same middleware, login required, as every page


TRIVIAL_PAGE = engines["django"].from_string('{% extends "base.html" %}{% block content %}<p>ok</p>{% endblock %}')


def trivial_page(request):
    """The same view as a page: the site's layout (navigation, banners, logout form) around no data."""
    return HttpResponse(TRIVIAL_PAGE.render({}, request))


urlpatterns = [path("bench/trivial/", trivial), path("bench/page/", trivial_page), path("", include("dubdash.urls"))]


def seed() -> tuple[list, list[Submission]]:
    User = get_user_model()
    members = []
    for n in range(MEMBERS):
        member = User.objects.create_user(username=f"member{n:02d}", password="bench")  # noqa: S106 - a throw-away benchmark database
        roles.assign(member, roles.TEAM_ADMIN if n == 0 else roles.SUBMITTER)
        members.append(member)
    members[0].is_staff = True
    members[0].save(update_fields=["is_staff"])
    rng = random.Random(5)
    now = timezone.now()
    batches = [Batch.objects.create(name=f"Episode {n}", created_by=rng.choice(members)) for n in range(500)]
    rows = []
    for n in range(JOBS):
        created = now - timedelta(seconds=n * 60)  # about ten weeks of history
        state = rng.choice(STATES)
        video, audio = f"https://cdn.example.com/show/ep{n // 12}.mp4", f"https://cdn.example.com/show/ep{n // 12}-{n % 12}.wav"
        rows.append(
            Submission(
                created_by=members[n % MEMBERS],
                batch=batches[(n // 12) % len(batches)] if n % 3 == 0 else None,
                title=f"Episode {n // 12} ({LANGUAGES[n % 12]})",
                video_url=video,
                audio_url=audio,
                inputs_fingerprint=inputs_fingerprint(video, audio, False),
                reference_id=f"bench-{n}",
                request_id=f"00000000-0000-4000-8000-{n:012d}",
                target_language=LANGUAGES[n % 12],
                state=state,
                upstream_status=state,
                created_at=created,
                sent_at=created,
                finished_at=created + timedelta(minutes=3) if state != Submission.State.PROCESSING else None,
                next_attempt_at=None,
            )
        )
    Submission.objects.bulk_create(rows, batch_size=5000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return members, rows


def p50_p95(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[math.ceil(len(ordered) * 0.95) - 1]  # nearest-rank p95


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        timed_get(client, url)
    return len(queries)


def timed_get(client: Client, url: str) -> float:
    """Milliseconds the server took to answer `url` (an error answer stops the benchmark)."""
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, url
    return elapsed


def measure_together(client: Client, pages: dict[str, str]) -> dict[str, tuple[float, float, int]]:
    """Server time of several pages measured in the same rounds, each round in a new random order, so
    that whatever else the machine does at a moment (another VM, a GC pause, a cache flushed) falls on
    all of them alike rather than on whichever page was being measured then."""
    for url in pages.values():
        for _ in range(3):
            timed_get(client, url)
    timings: dict[str, list[float]] = {name: [] for name in pages}
    order = list(pages.items())
    shuffle = random.Random(7).shuffle
    for _ in range(ROUNDS):
        shuffle(order)
        for name, url in order:
            timings[name].append(timed_get(client, url))
    return {name: (*p50_p95(timings[name]), count_queries(client, pages[name])) for name in pages}


def measure_alone(client: Client, url: str, requests: int) -> tuple[float, float, int]:
    for _ in range(3):
        timed_get(client, url)
    return (*p50_p95([timed_get(client, url) for _ in range(requests)]), count_queries(client, url))


def run() -> list[tuple]:
    started = time.perf_counter()
    members, rows = seed()
    seeded = time.perf_counter() - started
    admin = members[0]
    client = Client()
    client.force_login(admin)
    deep = Submission.objects.order_by("-created_at", "-pk").values_list("created_at", "pk")[60_000]
    bare, layout = "trivial view, bare response", "trivial view, site layout"
    pages = {
        bare: "/bench/trivial/",
        layout: "/bench/page/",
        "team history": "/?scope=team",
        "team history, member + state": f"/?scope=team&member={members[7].pk}&state=failed",
        "team history, search": "/?scope=team&q=Episode+4711",
        "team history, page 1,200": f"/?scope=team&after={deep[0].isoformat().replace('+', '%2B')}_{deep[1]}",
        "job detail": rows[50_000].get_absolute_url() if rows[50_000].pk else "/",
    }
    admin_changelist = "/admin/submissions/submission/"
    # Static files as in tests (no collectstatic in a benchmark); everything else as in production.
    plain_static = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(ROOT_URLCONF="history", STORAGES=plain_static):
        results = measure_together(client, pages)
        results["admin changelist"] = measure_alone(client, admin_changelist, ADMIN_REQUESTS)
    layout_p95, bare_p95 = results[layout][1], results[bare][1]
    out = [
        ("setup", "jobs seeded", f"{JOBS:,} across {MEMBERS} members in {seeded:.0f} s", "", None),
        ("setup", "requests per page", f"{ROUNDS} (admin changelist {ADMIN_REQUESTS})", "", None),
    ]
    for name, (p50, p95, queries) in results.items():
        out.append((name, "server time p50 / p95", f"{p50:.1f} / {p95:.1f} ms", "", None))
        if name.startswith("team history"):
            out.append((name, "p95 vs trivial view, site layout", f"{p95 / layout_p95:.1f}x", f"<= {MAX_RATIO:g}x",
                        p95 <= MAX_RATIO * layout_p95))
            out.append((name, "p95 vs trivial view, bare response", f"{p95 / bare_p95:.1f}x", "", None))
        if name == "admin changelist":
            out.append((name, "p95", f"{p95:.0f} ms", f"< {MAX_ADMIN_P95_MS:g} ms", p95 < MAX_ADMIN_P95_MS))
        target = name.startswith("team history") or name == "job detail"
        goal, met = (f"<= {MAX_QUERIES}", queries <= MAX_QUERIES) if target else ("", None)
        out.append((name, "SQL queries", str(queries), goal, met))
    return out
