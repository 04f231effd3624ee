"""The API client against the sandbox over real HTTP: every reply the contract documents, and the ones
it warns about (timeouts, dropped connections, a proxy's HTML page, bodies that are not JSON)."""

import logging
import socket
from urllib.parse import quote

import pytest

from submissions import chamelaion
from submissions.apikey import clients
from submissions.sandbox import DEMO_TOKEN, QUOTA_USED_UP_TOKEN, REVOKED_TOKEN

pytestmark = pytest.mark.django_db(databases=[])


@pytest.fixture
def client_for(sandbox):
    def make(token=DEMO_TOKEN, read_timeout=2.0):
        return chamelaion.ChamelaionClient(
            base_url=sandbox.base_url, api_key=token, connect_timeout=2, read_timeout=read_timeout
        )

    return make


@pytest.fixture
def api(client_for):
    return client_for()


def generate(api, reference_id="ref-1", video="https://cdn.example.com/ep1.mp4"):
    return api.generate(video_url=video, audio_url="https://cdn.example.com/ep1-de.wav", reference_id=reference_id)


def test_generate_then_read_back_by_id_and_by_reference_id(api, sandbox):
    request_id = api.generate(
        video_url=sandbox.sample_video_url,
        audio_url=sandbox.sample_audio_url,
        reference_id="episode-1.de",
        disable_active_speaker_detection=True,
    )
    by_id = api.get_request(request_id)
    by_reference = api.get_request("episode-1.de")
    assert by_id == by_reference
    assert by_id.id == request_id
    assert by_id.reference_id == "episode-1.de"
    assert by_id.status == "queued"
    assert by_id.created_at is not None and by_id.created_at.tzinfo is not None
    assert sandbox.jobs()[0]["id"] == request_id


def test_job_progresses_to_completed_with_output(api, sandbox):
    request_id = generate(api)
    sandbox.advance(15)
    processing = api.get_request(request_id)
    assert processing.status == "processing" and processing.started_at is not None
    sandbox.advance(20)
    done = api.get_request(request_id)
    assert done.status == "completed"
    assert done.finished_at > done.started_at
    assert done.output_url.startswith(sandbox.root_url) and done.output_url.endswith(".mp4")


def test_failed_job_carries_the_upstream_error_message(api, sandbox):
    request_id = generate(api, video="https://cdn.example.com/fail.mp4")
    sandbox.advance(60)
    failed = api.get_request(request_id)
    assert failed.status == "failed"
    assert failed.error_message == "video URL is not accessible"


def test_unknown_status_is_passed_through(api, sandbox):
    request_id = generate(api)
    sandbox.set_status(request_id, "rendering")
    assert api.get_request(request_id).status == "rendering"


def test_find_by_reference_id(api):
    assert api.find_by_reference_id("nothing-here") is None
    request_id = generate(api, reference_id="known")
    assert api.find_by_reference_id("known").id == request_id


def test_list_pages_and_filters(api):
    ids = [generate(api, reference_id=f"ref-{n}") for n in range(5)]
    first = api.list_requests(limit=2, offset=0)
    second = api.list_requests(limit=2, offset=2)
    assert (first.total, first.limit, first.offset) == (5, 2, 0)
    assert [r.id for r in first.requests + second.requests] == ids[:4]
    only = api.list_requests(reference_id="ref-3")
    assert [r.id for r in only.requests] == [ids[3]] and only.total == 1


def test_me_and_health(api):
    assert api.me() == "DubDash sandbox demo"
    assert api.health() is True


def test_not_found(api):
    with pytest.raises(chamelaion.NotFound) as caught:
        api.get_request("00000000-0000-4000-8000-000000000000")
    assert caught.value.detail == "lipsync request not found"
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("token", "message"),
    [("wrong-token", "invalid token"), ("", "missing token"), (REVOKED_TOKEN, "unauthorized")],
)
def test_unauthorized(client_for, token, message):
    with pytest.raises(chamelaion.Unauthorized) as caught:
        client_for(token).me()
    assert caught.value.detail == message
    assert not caught.value.retryable
    assert "administrator" in caught.value.user_message


def test_quota_used_up(client_for):
    with pytest.raises(chamelaion.QuotaExhausted) as caught:
        generate(client_for(QUOTA_USED_UP_TOKEN))
    assert caught.value.detail == "token limit reached"
    assert caught.value.status_code == 412
    assert not caught.value.retryable and not caught.value.may_have_reached_server
    assert "quota" in caught.value.user_message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": "video=x"}, "content-type must be application/json"),
        ({"data": "{not json", "headers_json": True}, "invalid request body"),
        ({"json": {"inputs": [{"type": "audio", "url": "https://a.example/x.wav"}]}}, "expected exactly one video input"),
        ({"json": {"inputs": [{"type": "video", "url": "https://a.example/x.mp4"}]}}, "expected exactly one audio input"),
        ({"json": {"inputs": [{"type": "image", "url": "https://a.example/x.png"}]}}, 'input type must be "video" or "audio"'),
    ],
)
def test_bad_request_messages_are_kept(api, kwargs, message):
    if kwargs.pop("headers_json", False):
        api.session.headers["Content-Type"] = "application/json"
    try:
        with pytest.raises(chamelaion.BadRequest) as caught:
            api._call("POST", "/v1/lipsync/generate", **kwargs)
    finally:
        api.session.headers.pop("Content-Type", None)
    assert caught.value.detail == message
    assert message in caught.value.user_message
    assert not caught.value.retryable


def test_rate_limited_carries_retry_after(api, sandbox):
    sandbox.rate_limit_per_minute = 2
    generate(api, reference_id="a")
    generate(api, reference_id="b")
    with pytest.raises(chamelaion.RateLimited) as caught:
        generate(api, reference_id="c")
    assert caught.value.detail == "rate limit exceeded"
    assert caught.value.retryable and not caught.value.may_have_reached_server
    assert caught.value.retry_after >= 1
    assert len(sandbox.jobs()) == 2


@pytest.mark.parametrize(
    ("fault", "error", "may_have_reached"),
    [
        ("500", chamelaion.ServerError, True),
        ("502-html", chamelaion.ServerError, True),
        ("429", chamelaion.RateLimited, False),
        ("drop", chamelaion.Unreachable, True),
        ("drop-after-create", chamelaion.Unreachable, True),
        ("not-json", chamelaion.MalformedReply, True),
        ("wrong-shape", chamelaion.MalformedReply, True),
    ],
)
def test_faults_on_generate(api, sandbox, fault, error, may_have_reached):
    sandbox.faults.script = [fault]
    with pytest.raises(error) as caught:
        generate(api)
    assert caught.value.may_have_reached_server is may_have_reached
    assert caught.value.retryable
    assert caught.value.user_message  # always something to show
    created = [job["reference_id"] for job in sandbox.jobs()]
    assert created == (["ref-1"] if fault == "drop-after-create" else [])


def test_proxy_html_page_is_a_server_error_not_a_crash(api, sandbox):
    sandbox.faults.script = ["502-html"]
    with pytest.raises(chamelaion.ServerError) as caught:
        api.me()
    assert caught.value.status_code == 502


def test_read_timeout_may_have_created_the_job(client_for, sandbox):
    sandbox.faults.hang_seconds = 1.0
    sandbox.faults.script = ["timeout"]
    with pytest.raises(chamelaion.Unreachable) as caught:
        generate(client_for(read_timeout=0.3))
    assert caught.value.may_have_reached_server
    assert "may or may not" in caught.value.user_message


def test_connection_refused_proves_nothing_was_sent():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the client connects
    api = chamelaion.ChamelaionClient(base_url=f"http://127.0.0.1:{port}/api", api_key=DEMO_TOKEN, connect_timeout=1)
    with pytest.raises(chamelaion.Unreachable) as caught:
        generate(api)
    assert not caught.value.may_have_reached_server
    assert "Nothing was sent" in caught.value.user_message


def test_the_key_never_appears_in_errors_reprs_or_logs(client_for, sandbox, caplog):
    secret = "sk-live-THIS-MUST-NEVER-LEAK-1234"
    caplog.set_level(logging.DEBUG)
    api = client_for(secret)
    with pytest.raises(chamelaion.Unauthorized) as caught:
        generate(api)
    sandbox.faults.script = ["drop"]
    with pytest.raises(chamelaion.Unreachable) as dropped:
        api.me()
    for text in (str(caught.value), repr(caught.value), caught.value.user_message, caught.value.detail,
                 str(dropped.value), dropped.value.detail, repr(api), caplog.text):
        assert secret not in text


@pytest.mark.django_db  # a key stored by a team admin would win, so the database is asked
def test_sandbox_mode_uses_the_sandbox_and_its_demo_token(settings, sandbox):
    settings.CHAMELAION_API_KEY = ""
    api = clients.get_client()
    assert api.base_url == sandbox.base_url
    assert api.me() == "DubDash sandbox demo"
    settings.CHAMELAION_API_KEY = "real-key"
    settings.CHAMELAION_BASE_URL = "https://api.chamelaion.com/api"
    assert clients.get_client().base_url == "https://api.chamelaion.com/api"
    assert not clients.is_sandbox_mode()


def test_connections_are_kept_alive(api, sandbox):
    api.me()
    pool = api.session.adapters["http://"].poolmanager.connection_from_url(sandbox.base_url)
    opened = pool.num_connections
    for _ in range(3):
        api.me()
    assert pool.num_connections == opened  # three more calls, no new TCP connection


class _StubResponse:
    def __init__(self, status_code, payload):
        self.status_code, self._payload, self.headers = status_code, payload, {}

    def json(self):
        return self._payload


class _StubSession:
    def __init__(self, response):
        self.response = response

    def request(self, *args, **kwargs):
        return self.response


def test_one_unreadable_job_in_a_list_page_does_not_hide_the_others():
    page = {
        "data": [
            {"id": "a1", "status": "completed", "created_at": "2026-11-24T10:00:00Z"},
            {"status": "queued"},  # no id
            {"id": "c3", "status": "processing", "created_at": "yesterday-ish"},  # unreadable date
            {"id": "d4", "status": "queued", "created_at": "2026-11-24T10:01:00.5Z", "extra": [1, 2]},
        ],
        "pagination": {"limit": 100, "offset": 0, "total": 4},
    }
    api = chamelaion.ChamelaionClient(base_url="http://stub/api", api_key="k", session=_StubSession(_StubResponse(200, page)))
    result = api.list_requests()
    assert [r.id for r in result.requests] == ["a1", "d4"]
    assert (result.size, result.unreadable, result.total) == (4, 2, 4)


@pytest.mark.parametrize(
    "payload",
    [{"data": "nope", "pagination": {"limit": 1, "offset": 0, "total": 1}}, {"data": []}, ["a", "list"]],
)
def test_a_list_of_the_wrong_shape_is_malformed(payload):
    api = chamelaion.ChamelaionClient(base_url="http://stub/api", api_key="k", session=_StubSession(_StubResponse(200, payload)))
    with pytest.raises(chamelaion.MalformedReply):
        api.list_requests()


# --- Replies made fit to store (issue 9, item 2) and ids as path segments (item 3) ---------------------


def stub_client(payload):
    return chamelaion.ChamelaionClient(base_url="http://stub/api", api_key="k", session=_StubSession(_StubResponse(200, payload)))


def reply(**fields):
    return {"id": "r1", "status": "completed", "created_at": "2026-11-24T10:00:00Z", **fields}


def test_texts_lose_control_characters_and_lone_surrogates():
    got = stub_client(reply(status="\x00Comp\x00leted\r", error_message="a\x00b\tc\nd\x1be\ud800")).get_request("r1")
    assert got.status == "completed"
    assert got.error_message == "ab\tc\nde\ufffd"  # tab and line feed are ordinary text


def test_long_texts_are_cut_to_their_columns_and_say_so():
    got = stub_client(reply(status="s" * 500, error_message="e" * 100_000)).get_request("r1")
    assert len(got.status) == 64 and got.status.endswith("… [truncated]")
    assert len(got.error_message) == 5_000 and got.error_message.endswith("… [truncated]")
    assert got.error_message.startswith("e" * 4_000)


@pytest.mark.parametrize("output_url", ["https://cdn.example.com/o.mp4?sig=" + "a" * 10_000, "http://x.example/o.mp4"])
def test_a_web_link_of_any_real_length_is_kept(output_url):
    got = stub_client(reply(output_url=output_url)).get_request("r1")
    assert (got.output_url, got.output_problem) == (output_url, "")


@pytest.mark.parametrize(
    ("output_url", "problem"),
    [
        ("https://cdn.example.com/o.mp4?sig=" + "a" * 70_000, "characters long"),
        ("javascript:alert(1)", "not a web address"),
        ("ftp://cdn.example.com/o.mp4", "not a web address"),
        ("https://cdn.example.com/o\x00.mp4", "not a web address"),
        ("https:///no-host.mp4", "not a web address"),
        ("http://[::1/o.mp4", "not a web address"),
    ],
)
def test_a_link_that_cannot_be_played_is_dropped_with_the_reason(output_url, problem):
    got = stub_client(reply(output_url=output_url)).get_request("r1")
    assert got.output_url == "" and problem in got.output_problem


@pytest.mark.parametrize("request_id", ["r" * 65, "a\x00b", "..", "\ud800"])
def test_a_request_id_that_cannot_be_stored_as_it_is_makes_the_reply_unreadable(request_id):
    with pytest.raises(chamelaion.MalformedReply):
        stub_client({**reply(), "id": request_id}).get_request("r1")
    with pytest.raises(chamelaion.MalformedReply):
        stub_client({"status": "success", "request_id": request_id}).generate(
            video_url="https://x.example/v.mp4", audio_url="https://x.example/a.wav", reference_id="ref"
        )


@pytest.mark.parametrize("reference_id", ["r" * 129, "a\x00b", "a\x1fb", "..", "\ud800"])
def test_a_reference_id_that_cannot_be_stored_as_it_is_is_left_out(reference_id):
    assert stub_client(reply(reference_id=reference_id)).get_request("r1").reference_id == ""


def test_a_usable_reference_id_is_kept_exactly():
    assert stub_client(reply(reference_id="x" * 128)).get_request("r1").reference_id == "x" * 128
    assert stub_client(reply(reference_id="a b/ç%")).get_request("r1").reference_id == "a b/ç%"


@pytest.mark.parametrize("key", ["", ".", "..", "..."])
def test_an_empty_or_dot_only_id_is_refused_before_any_request(api, sandbox, key):
    with pytest.raises(chamelaion.UnusableId):
        api.get_request(key)
    with pytest.raises(chamelaion.UnusableId):
        api.find_by_reference_id(key)
    if key:
        with pytest.raises(chamelaion.UnusableId):
            generate(api, reference_id=key)
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize("key", ["a..b", ".hidden", "-x", "50%off", "a/b", "?#", "épisode"])
def test_a_lookup_puts_the_id_on_the_wire_as_one_encoded_segment(api, sandbox, key):
    job = sandbox.create_job(video_url="https://x.example/v.mp4", audio_url="https://x.example/a.wav", reference_id=key)
    assert api.find_by_reference_id(key).id == job["id"]
    assert sandbox.request_paths() == [f"/api/v1/lipsync/requests/{quote(key, safe='')}"]
    assert api.get_request(job["id"]).reference_id == key
