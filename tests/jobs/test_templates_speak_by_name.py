"""The pages name states through the model (JobLabels), never by raw state strings, and the history's rows
are built by a template: escaped by the engine, and never stale however they are cached."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from submissions.jobs.selectors import HistoryRow
from submissions.models import JobLabels, Submission
from tests.factories import make_submission

State = Submission.State
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
HISTORY = reverse("submissions:history")


def test_no_template_compares_a_raw_state_string():
    values = "|".join(re.escape(state.value) for state in State)
    compared = re.compile(rf"""(==|!=|\bin)\s*["']({values})["']|["']({values})["']\s*(==|!=)""")
    found = [
        f"{path.relative_to(TEMPLATES)}:{number}: {line.strip()}"
        for path in TEMPLATES.rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "{%" in line and compared.search(line)
    ]
    assert found == []


def test_no_template_computes_what_it_tests():
    """An {% if %} tests a boolean or an attribute the view or a selector prepared (takes.listed), never
    something it computes: no filter (`takes|length > 1`), no comparison with a number (`take > 1`)."""
    computed = re.compile(r"\{%-?\s*(el)?if\b[^%]*(\||[<>]=?\s*-?\d)[^%]*%\}")
    found = [
        f"{path.relative_to(TEMPLATES)}:{number}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for match in computed.finditer(line)
    ]
    assert found == []
    assert computed.search("{% if takes|length > 1 %}") and computed.search("{% elif submission.take > 1 %}")


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("is_waiting_to_send", State.PENDING),
        ("is_cancelled", State.CANCELLED),
        ("is_completed", State.COMPLETED),
        ("failed_at_chamelaion", State.FAILED),
        ("is_missing", State.MISSING),
    ],
)
def test_each_named_state_is_true_for_its_state_only(name, state):
    for other in State:
        assert getattr(Submission(state=other), name) is (other == state), other
    # The history's light rows answer the same (JobLabels, written once for both).
    assert getattr(HistoryRow, name) is getattr(JobLabels, name)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "says"),
    [
        (State.PENDING, "<strong>Waiting to send.</strong>"),
        (State.CANCELLED, "<strong>Cancelled.</strong>"),
        (State.FAILED, "<strong>Chamelaion could not make this video.</strong>"),
        (State.MISSING, "<strong>Not found at Chamelaion.</strong>"),
    ],
)
def test_the_job_page_still_says_what_each_state_means(logged_in, user, state, says):
    job = make_submission(user, state=state)
    response = logged_in.get(job.get_absolute_url())
    assert response.status_code == 200 and says in response.content.decode()


@pytest.mark.django_db
def test_a_completed_job_without_a_kept_link_says_why(logged_in, user):
    job = make_submission(user, state=State.COMPLETED, last_error="The output link was too long to keep.")
    page = logged_in.get(job.get_absolute_url()).content.decode()
    assert '<p class="placeholder">The output link was too long to keep.</p>' in page


@pytest.mark.django_db
def test_history_rows_follow_every_change_and_escape_what_they_show(logged_in, user):
    job = make_submission(user, title="<b>Ep 1</b> & co", state=State.QUEUED, request_id="r-1")
    first = logged_in.get(HISTORY)
    assert first.status_code == 200
    row = _row(first.content.decode(), job.pk)
    assert "&lt;b&gt;Ep 1&lt;/b&gt; &amp; co" in row and "<b>" not in row
    assert 'data-state="queued"' in row and f'href="{job.get_absolute_url()}"' in row

    # The rows are a cached fragment: whatever a row shows changing must show at the next load.
    Submission.objects.filter(pk=job.pk).update(state=State.COMPLETED, upstream_status="completed")
    assert 'data-state="completed"' in _row(logged_in.get(HISTORY).content.decode(), job.pk)
    Submission.objects.filter(pk=job.pk).update(title="Episode 1")
    assert ">Episode 1</a>" in _row(logged_in.get(HISTORY).content.decode(), job.pk)


def _row(page: str, pk: int) -> str:
    start = page.index(f'<tr id="submission-{pk}">')
    return page[start : page.index("</tr>", start)]
