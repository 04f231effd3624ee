"""Tests of the Chamelaion sandbox itself, over real HTTP on loopback.

They need neither Django's database nor `requests` (only one app module may import it):
plain http.client talks to an in-process SandboxServer. They also pass with
`python -m pytest -p no:django tests/test_sandbox.py`.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from submissions.sandbox import (
    DEMO_TOKEN,
    QUOTA_USED_UP_TOKEN,
    REVOKED_TOKEN,
    Faults,
    SandboxServer,
)
from submissions.sandbox.server import MEDIA_DIR

GENERATE = "/api/v1/lipsync/generate"
UPLOAD = "/api/v1/lipsync/generate-with-media"
REQUESTS = "/api/v1/lipsync/requests"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MP4 = (MEDIA_DIR / "sample.mp4").read_bytes()
WAV = (MEDIA_DIR / "sample.wav").read_bytes()
MP3 = (MEDIA_DIR / "sample.mp3").read_bytes()


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def server():
    with SandboxServer(port=0, seed=1234) as sandbox:
        yield sandbox


@pytest.fixture
def sb(server: SandboxServer):
    server.reset()
    yield server
    server.reset()


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        assert self.headers["Content-Type"] == "application/json"
        return self.json["error"]


_NO_JSON = object()


def call(
    sb: SandboxServer,
    method: str,
    path: str,
    *,
    json_body: Any = _NO_JSON,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    token: str | None = DEMO_TOKEN,
    timeout: float = 5.0,
) -> Reply:
    """One request on a fresh connection; token=None sends no auth header at all."""
    all_headers: dict[str, str] = {}
    if token is not None:
        all_headers["x-api-key"] = token
    if json_body is not _NO_JSON:
        body = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    conn = http.client.HTTPConnection(sb.host, sb.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def inputs(video: str = "https://cdn.example.com/v.mp4", audio: str = "https://cdn.example.com/a.wav"):
    return [{"type": "video", "url": video}, {"type": "audio", "url": audio}]


def generate(sb: SandboxServer, *, token: str | None = DEMO_TOKEN, **fields: Any) -> Reply:
    payload = {"inputs": inputs(fields.pop("video", "https://cdn.example.com/v.mp4"),
                                fields.pop("audio", "https://cdn.example.com/a.wav"))}
    payload.update(fields)
    return call(sb, "POST", GENERATE, json_body=payload, token=token)


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """(body, content type) for (name, filename or None for a plain field, content) parts."""
    boundary = uuid.uuid4().hex
    chunks = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def upload(sb: SandboxServer, parts: list[tuple[str, str | None, bytes]], token: str = DEMO_TOKEN) -> Reply:
    body, content_type = multipart(parts)
    return call(sb, "POST", UPLOAD, body=body, headers={"Content-Type": content_type}, token=token)


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def expect_no_response(sb: SandboxServer, request) -> None:
    """The server must hang up without sending a single byte."""
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        request()


# --------------------------------------------------------------------------- health, auth, routing


def test_health_needs_no_token(sb):
    reply = call(sb, "GET", "/api/health", token=None)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json == {"status": "ok"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing authorization header"),
        ({"Authorization": "Basic abc"}, "invalid authorization format"),
        ({"Authorization": "Token x"}, "invalid authorization format"),
        ({"Authorization": "Bearer "}, "missing token"),
        ({"x-api-key": ""}, "missing token"),
        ({"x-api-key": "   "}, "missing token"),
        ({"x-api-key": "not-a-known-token"}, "invalid token"),
        ({"Authorization": "Bearer not-a-known-token"}, "invalid token"),
        ({"x-api-key": REVOKED_TOKEN}, "unauthorized"),
        ({"Authorization": f"Bearer {REVOKED_TOKEN}"}, "unauthorized"),
    ],
)
def test_each_401_message(sb, headers, message):
    for method, path in [("GET", "/api/v1/users/me"), ("GET", REQUESTS), ("POST", GENERATE)]:
        reply = call(sb, method, path, headers=headers, token=None)
        assert (reply.status, reply.error) == (401, message), (method, path)
    assert sb.jobs() == []


def test_both_header_forms_work(sb):
    assert call(sb, "GET", "/api/v1/users/me", token=DEMO_TOKEN).status == 200
    bearer = call(sb, "GET", "/api/v1/users/me", token=None, headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
    assert bearer.status == 200
    assert bearer.json == {"name": "DubDash sandbox demo"}


def test_x_api_key_wins_over_authorization(sb):
    good_key = call(sb, "GET", "/api/v1/users/me", headers={"Authorization": "Bearer nope"})
    assert good_key.status == 200
    bad_key = call(sb, "GET", "/api/v1/users/me", token="nope", headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
    assert (bad_key.status, bad_key.error) == (401, "invalid token")


def test_users_me_names_the_token(sb):
    assert call(sb, "GET", "/api/v1/users/me").json == {"name": "DubDash sandbox demo"}
    assert call(sb, "GET", "/api/v1/users/me", token=QUOTA_USED_UP_TOKEN).status == 200


def test_unknown_path_and_wrong_method(sb):
    for path in ["/api/v1/nope", "/api/v2/lipsync/generate", "/nope", "/api"]:
        reply = call(sb, "GET", path)
        assert (reply.status, reply.error) == (404, "not found"), path
    for method, path in [("GET", GENERATE), ("DELETE", REQUESTS), ("POST", "/api/health"), ("PUT", UPLOAD)]:
        reply = call(sb, method, path)
        assert (reply.status, reply.error) == (405, "method not allowed"), (method, path)


# --------------------------------------------------------------------------- generate (JSON)


def test_generate_success(sb):
    reply = generate(sb, reference_id="clip-1", disable_active_speaker_detection=True)
    assert reply.status == 200
    assert reply.json["status"] == "success"
    request_id = reply.json["request_id"]
    assert uuid.UUID(request_id).version == 4
    [job] = sb.jobs()
    assert job["id"] == request_id
    assert job["reference_id"] == "clip-1"
    assert job["status"] == "queued"
    assert ISO_Z.match(job["created_at"])
    assert set(job) == {"id", "created_at", "status", "reference_id"}
    assert sb.stats()["generate"] == 1


def test_generate_accepts_charset_and_any_input_order(sb):
    payload = {"inputs": list(reversed(inputs()))}
    reply = call(sb, "POST", GENERATE, body=json.dumps(payload).encode(),
                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 200
    assert generate(sb, reference_id="x" * 128).status == 200


V = "https://cdn.example.com/v.mp4"
A = "https://cdn.example.com/a.wav"
BAD_BODY = "invalid request body"


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("text/plain", {"inputs": inputs()}, "content-type must be application/json"),
        (None, {"inputs": inputs()}, "content-type must be application/json"),
        ("application/x-www-form-urlencoded", {"inputs": inputs()}, "content-type must be application/json"),
        ("application/json", b"{not json", BAD_BODY),
        ("application/json", b"", BAD_BODY),
        ("application/json", b"\xff\xfe\xfa", BAD_BODY),
        ("application/json", [1, 2], BAD_BODY),
        ("application/json", {}, BAD_BODY),
        ("application/json", {"inputs": "video"}, BAD_BODY),
        ("application/json", {"inputs": ["video", "audio"]}, BAD_BODY),
        ("application/json", {"inputs": [{"type": "video"}, {"type": "audio", "url": A}]}, BAD_BODY),
        ("application/json", {"inputs": [{"type": "video", "url": 5}, {"type": "audio", "url": A}]}, BAD_BODY),
        ("application/json", {"inputs": [{"type": "video", "url": "/v.mp4"}, {"type": "audio", "url": A}]}, BAD_BODY),
        ("application/json", {"inputs": [{"type": "video", "url": "ftp://h/v.mp4"}, {"type": "audio", "url": A}]}, BAD_BODY),
        ("application/json", {"inputs": inputs(), "disable_active_speaker_detection": "yes"}, BAD_BODY),
        ("application/json", {"inputs": inputs(), "reference_id": 5}, BAD_BODY),
        ("application/json", {"inputs": inputs(), "reference_id": "x" * 129}, BAD_BODY),
        ("application/json", {"inputs": [{"type": "image", "url": V}, {"type": "audio", "url": A}]},
         'input type must be "video" or "audio"'),
        ("application/json", {"inputs": [{"url": V}, {"type": "audio", "url": A}]},
         'input type must be "video" or "audio"'),
        ("application/json", {"inputs": []}, "expected exactly one video input"),
        ("application/json", {"inputs": [{"type": "audio", "url": A}]}, "expected exactly one video input"),
        ("application/json", {"inputs": [{"type": "video", "url": V}] * 2 + [{"type": "audio", "url": A}]},
         "expected exactly one video input"),
        ("application/json", {"inputs": [{"type": "video", "url": V}]}, "expected exactly one audio input"),
        ("application/json", {"inputs": [{"type": "video", "url": V}] + [{"type": "audio", "url": A}] * 2},
         "expected exactly one audio input"),
    ],
)
def test_generate_400s(sb, content_type, body, message):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    reply = call(sb, "POST", GENERATE, body=raw, headers=headers)
    assert (reply.status, reply.error) == (400, message)
    assert sb.jobs() == []


# --------------------------------------------------------------------------- generate-with-media (multipart)


def test_upload_success_with_wav_and_mp3(sb):
    wav = upload(sb, [("video", "clip.mp4", MP4), ("audio", "voice.wav", WAV),
                      ("reference_id", None, b"up-1"), ("disable_active_speaker_detection", None, b"true")])
    assert wav.status == 200, wav.body
    mp3 = upload(sb, [("audio", "voice.mp3", MP3), ("video", "clip.mp4", MP4)])
    assert mp3.status == 200, mp3.body
    first, second = sb.jobs()
    assert first["id"] == wav.json["request_id"] and first["reference_id"] == "up-1"
    assert second["id"] == mp3.json["request_id"] and "reference_id" not in second
    assert sb.stats()["uploads"] == 2


def test_upload_400s(sb):
    json_reply = call(sb, "POST", UPLOAD, json_body={"inputs": inputs()})
    assert (json_reply.status, json_reply.error) == (400, "content-type must be multipart/form-data")
    cases = [
        ([("audio", "a.wav", WAV)], "missing video file"),
        ([("video", None, MP4), ("audio", "a.wav", WAV)], "missing video file"),  # a field, not a file
        ([("video", "v.mp4", MP4)], "missing audio file"),
        ([("video", "v.mp4", b"definitely not a video"), ("audio", "a.wav", WAV)], "video must be an MP4 file"),
        ([("video", "v.mp4", WAV), ("audio", "a.wav", WAV)], "video must be an MP4 file"),
        ([("video", "v.mp4", MP4), ("audio", "a.wav", b"plain text")], "audio must be a WAV or MP3 file"),
        ([("video", "v.mp4", MP4), ("audio", "a.wav", MP4)], "audio must be a WAV or MP3 file"),
        ([("video", "v.mp4", MP4), ("audio", "a.wav", WAV), ("disable_active_speaker_detection", None, b"maybe")],
         BAD_BODY),
        ([("video", "v.mp4", MP4), ("audio", "a.wav", WAV), ("reference_id", None, b"r" * 129)], BAD_BODY),
    ]
    for parts, message in cases:
        reply = upload(sb, parts)
        assert (reply.status, reply.error) == (400, message), message
    garbled = call(sb, "POST", UPLOAD, body=b"no parts here", headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert (garbled.status, garbled.error) == (400, BAD_BODY)
    assert sb.jobs() == []


def test_upload_over_512_mb_is_refused_without_reading_it(sb):
    conn = http.client.HTTPConnection(sb.host, sb.port, timeout=5)
    try:
        conn.putrequest("POST", UPLOAD)
        conn.putheader("x-api-key", DEMO_TOKEN)
        conn.putheader("Content-Type", "multipart/form-data; boundary=xyz")
        conn.putheader("Content-Length", str(600 * 1024 * 1024))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read()) == {"error": "request entity too large"}
        assert response.headers["Connection"] == "close"
    finally:
        conn.close()


# --------------------------------------------------------------------------- quota and rate limit


def test_quota_used_up_token_gets_412_but_can_read(sb):
    reply = generate(sb, token=QUOTA_USED_UP_TOKEN)
    assert (reply.status, reply.error) == (412, "token limit reached")
    reply = upload(sb, [("video", "v.mp4", MP4), ("audio", "a.wav", WAV)], token=QUOTA_USED_UP_TOKEN)
    assert (reply.status, reply.error) == (412, "token limit reached")
    # 412 comes before body validation
    bad = call(sb, "POST", GENERATE, body=b"junk", token=QUOTA_USED_UP_TOKEN)
    assert bad.status == 412
    assert call(sb, "GET", REQUESTS, token=QUOTA_USED_UP_TOKEN).status == 200
    assert call(sb, "GET", "/api/v1/users/me", token=QUOTA_USED_UP_TOKEN).json == {
        "name": "DubDash sandbox (quota used up)"
    }
    assert sb.jobs(QUOTA_USED_UP_TOKEN) == []


def test_rate_limit_and_refusals_do_not_use_budget(sb):
    sb.rate_limit_per_minute = 3
    assert [generate(sb).status for _ in range(3)] == [200, 200, 200]
    for _ in range(3):
        refused = generate(sb)
        assert (refused.status, refused.error) == (429, "rate limit exceeded")
        retry_after = refused.headers["Retry-After"]
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
    assert len(sb.jobs()) == 3
    assert sb.stats()["status_429"] == 3
    # Had the three refusals used slots, a limit of 4 would still refuse.
    sb.rate_limit_per_minute = 4
    assert generate(sb).status == 200
    assert generate(sb).status == 429
    # Per account: another token has its own window; reads are never limited.
    sb.add_token("sandbox-test-other", "Other team")
    assert generate(sb, token="sandbox-test-other").status == 200
    assert call(sb, "GET", REQUESTS).status == 200


def test_rate_limit_comes_before_body_validation(sb):
    sb.rate_limit_per_minute = 1
    assert generate(sb).status == 200
    assert call(sb, "POST", GENERATE, body=b"junk", headers={"Content-Type": "text/plain"}).status == 429


# --------------------------------------------------------------------------- reading jobs


def test_get_by_id_and_by_reference_id(sb):
    request_id = generate(sb, reference_id="order-42/a b").json["request_id"]
    by_id = call(sb, "GET", f"{REQUESTS}/{request_id}")
    by_ref = call(sb, "GET", f"{REQUESTS}/{quote('order-42/a b', safe='')}")
    assert by_id.status == by_ref.status == 200
    assert by_id.json == by_ref.json
    assert by_id.json["id"] == request_id and by_id.json["reference_id"] == "order-42/a b"


def test_get_404_and_accounts_are_separate(sb):
    sb.add_token("sandbox-test-other", "Other team")
    job = sb.create_job(video_url=V, audio_url=A, reference_id="theirs", token="sandbox-test-other")
    for key in [str(uuid.uuid4()), "no-such-ref", job["id"], "theirs"]:
        reply = call(sb, "GET", f"{REQUESTS}/{key}")
        assert (reply.status, reply.error) == (404, "lipsync request not found"), key
    assert call(sb, "GET", f"{REQUESTS}/theirs", token="sandbox-test-other").json["id"] == job["id"]


def test_list_pages_oldest_first_with_filter_and_clamp(sb):
    ids = [sb.create_job(video_url=V, audio_url=A, reference_id=f"ref-{i % 2}")["id"] for i in range(25)]
    sb.create_job(video_url=V, audio_url=A, token=QUOTA_USED_UP_TOKEN)  # another account

    default = call(sb, "GET", REQUESTS).json
    assert [j["id"] for j in default["data"]] == ids[:20]
    assert default["pagination"] == {"limit": 20, "offset": 0, "total": 25}

    page = call(sb, "GET", f"{REQUESTS}?limit=2&offset=1").json
    assert [j["id"] for j in page["data"]] == ids[1:3]
    assert page["pagination"] == {"limit": 2, "offset": 1, "total": 25}

    clamped = call(sb, "GET", f"{REQUESTS}?limit=1000").json
    assert clamped["pagination"]["limit"] == 100 and len(clamped["data"]) == 25

    filtered = call(sb, "GET", f"{REQUESTS}?reference_id=ref-1&limit=100").json
    assert [j["id"] for j in filtered["data"]] == ids[1::2]
    assert filtered["pagination"]["total"] == 12

    beyond = call(sb, "GET", f"{REQUESTS}?offset=500").json
    assert beyond["data"] == [] and beyond["pagination"]["total"] == 25


@pytest.mark.parametrize("query", ["limit=abc", "limit=-1", "offset=-5", "offset=1.5", "limit=2x"])
def test_list_rejects_bad_paging(sb, query):
    reply = call(sb, "GET", f"{REQUESTS}?{query}")
    assert (reply.status, reply.error) == (400, "invalid request body")


# --------------------------------------------------------------------------- progression


def test_progression_queued_processing_completed(sb):
    job_id = generate(sb).json["request_id"]

    def get() -> dict:
        return call(sb, "GET", f"{REQUESTS}/{job_id}").json

    queued = get()
    assert queued["status"] == "queued" and "started_at" not in queued

    sb.advance(10.5)
    processing = get()
    assert processing["status"] == "processing"
    assert ISO_Z.match(processing["started_at"]) and "finished_at" not in processing

    sb.advance(20)
    done = get()
    assert done["status"] == "completed"
    assert done["output_url"] == f"{sb.root_url}/files/output/{job_id}.mp4"
    assert ISO_Z.match(done["finished_at"]) and "error_message" not in done
    assert done["created_at"] < done["started_at"] < done["finished_at"]
    output = call(sb, "GET", urlsplit(done["output_url"]).path, token=None)
    assert (output.status, output.headers["Content-Type"], output.body) == (200, "video/mp4", MP4)


@pytest.mark.parametrize(
    ("video", "audio", "message"),
    [
        ("https://cdn.example.com/fail.mp4", A, "video URL is not accessible"),
        (V, "https://cdn.example.com/will-fail.wav", "audio URL is not accessible"),
        ("https://cdn.example.com/fail.mp4", "https://cdn.example.com/fail.wav", "video URL is not accessible"),
    ],
)
def test_failed_jobs_explain_why(sb, video, audio, message):
    job_id = generate(sb, video=video, audio=audio).json["request_id"]
    sb.advance(30)
    job = call(sb, "GET", f"{REQUESTS}/{job_id}").json
    assert job["status"] == "failed" and job["error_message"] == message
    assert "output_url" not in job and ISO_Z.match(job["finished_at"])
    assert call(sb, "GET", f"/files/output/{job_id}.mp4", token=None).status == 404


def test_zero_job_seconds_completes_at_once(sb):
    sb.job_seconds = 0
    job_id = generate(sb).json["request_id"]
    assert call(sb, "GET", f"{REQUESTS}/{job_id}").json["status"] == "completed"


def test_set_status_unknown_value_sticks(sb):
    job = sb.create_job(video_url=V, audio_url=A, reference_id="odd")
    sb.set_status(job["id"], "rendering")
    sb.advance(1000)
    seen = call(sb, "GET", f"{REQUESTS}/odd").json
    assert seen["status"] == "rendering" and "output_url" not in seen
    assert call(sb, "GET", REQUESTS).json["data"][0]["status"] == "rendering"
    with pytest.raises(KeyError):
        sb.set_status(str(uuid.uuid4()), "completed")


# --------------------------------------------------------------------------- scripted faults


@pytest.mark.parametrize(
    ("fault", "status", "content_type"),
    [("500", 500, "application/json"), ("429", 429, "application/json"), ("502-html", 502, "text/html"),
     ("not-json", 200, "text/plain"), ("wrong-shape", 200, "application/json")],
)
def test_script_faults_that_answer_create_no_job(sb, fault, status, content_type):
    sb.faults.script = [fault]
    reply = generate(sb)
    assert (reply.status, reply.headers["Content-Type"]) == (status, content_type)
    assert sb.jobs() == []
    assert generate(sb).status == 200  # one-shot
    assert len(sb.jobs()) == 1


def test_script_fault_bodies(sb):
    sb.faults.script = ["500", "429", "502-html", "not-json", "wrong-shape"]
    assert generate(sb).json == {"error": "internal error"}
    limited = generate(sb)
    assert limited.json == {"error": "rate limit exceeded"} and limited.headers["Retry-After"] == "2"
    html = generate(sb)
    assert b"Bad Gateway" in html.body
    with pytest.raises(ValueError):
        json.loads(html.body)
    assert generate(sb).body == b"OK"
    assert generate(sb).json == {"unexpected": True}
    assert sb.faults.script == []


def test_script_skips_health_and_hits_reads_too(sb):
    sb.faults.script = ["500"]
    assert call(sb, "GET", "/api/health").status == 200
    assert call(sb, "GET", REQUESTS).status == 500
    assert call(sb, "GET", REQUESTS).status == 200


def test_drop_closes_without_answer_and_creates_nothing(sb):
    sb.faults.script = ["drop"]
    expect_no_response(sb, lambda: generate(sb))
    assert sb.jobs() == []
    assert sb.stats()["dropped"] == 1
    assert generate(sb).status == 200


def test_drop_after_create_creates_exactly_one_job(sb):
    sb.faults.script = ["drop-after-create"]
    expect_no_response(sb, lambda: generate(sb, reference_id="lost-answer"))
    [job] = sb.jobs()
    assert job["reference_id"] == "lost-answer"
    # The client can find out afterwards that its job exists.
    assert call(sb, "GET", f"{REQUESTS}/lost-answer").json["id"] == job["id"]


def test_drop_after_create_on_a_read_is_a_plain_drop(sb):
    sb.faults.script = ["drop-after-create"]
    expect_no_response(sb, lambda: call(sb, "GET", REQUESTS))
    assert sb.jobs() == []


def test_timeout_still_creates_the_job(sb):
    sb.faults.hang_seconds = 1.0
    sb.faults.script = ["timeout"]
    with pytest.raises(TimeoutError):  # socket.timeout: the client gave up after 0.5 s
        call(sb, "POST", GENERATE, json_body={"inputs": inputs()}, timeout=0.5)
    assert sb.jobs() == []  # not yet: the server is still "hanging"
    assert wait_for(lambda: len(sb.jobs()) == 1, timeout=5)


def test_fault_rates_at_one(sb):
    sb.faults.rate_500 = 1.0
    for method, path in [("POST", GENERATE), ("GET", REQUESTS), ("GET", "/api/v1/users/me")]:
        assert call(sb, method, path, json_body={"inputs": inputs()}).status == 500
    assert call(sb, "GET", "/api/health").status == 200
    assert sb.jobs() == []

    sb.faults = Faults(rate_429=1.0)
    limited = generate(sb)
    assert (limited.status, limited.error, limited.headers["Retry-After"]) == (429, "rate limit exceeded", "1")
    assert call(sb, "GET", REQUESTS).status == 200  # only generation requests
    assert sb.jobs() == []

    sb.faults = Faults(rate_drop_after_create=1.0)
    expect_no_response(sb, lambda: generate(sb))
    expect_no_response(sb, lambda: generate(sb))
    assert len(sb.jobs()) == 2
    assert call(sb, "GET", REQUESTS).status == 200
    assert sb.stats()["generate"] == 2 and sb.stats()["dropped"] == 2


# --------------------------------------------------------------------------- bad replies and request paths


def test_bad_replies_spoil_one_job_on_get_and_list_and_leave_the_truth_alone(sb):
    spoiled, fine = (sb.create_job(video_url=V, audio_url=A, reference_id=f"r{n}")["id"] for n in range(2))
    sb.faults.bad_replies = {spoiled: "nul-in-status"}
    assert call(sb, "GET", f"{REQUESTS}/{spoiled}").json["status"] == "q\x00ueued\x00"
    assert call(sb, "GET", f"{REQUESTS}/r0").json["status"] == "q\x00ueued\x00"  # by reference id too
    listed = {job["id"]: job["status"] for job in call(sb, "GET", REQUESTS).json["data"]}
    assert listed == {spoiled: "q\x00ueued\x00", fine: "queued"}
    assert [job["status"] for job in sb.jobs()] == ["queued", "queued"]  # the job itself is unchanged


def test_bad_replies_every_job(sb):
    sb.create_job(video_url=V, audio_url=A)
    sb.create_job(video_url=V, audio_url=A)
    sb.faults.bad_replies = {"*": "long-status"}
    assert all(len(job["status"]) > 300 for job in call(sb, "GET", REQUESTS).json["data"])


@pytest.mark.parametrize(
    ("kind", "video", "check"),
    [
        ("nul-in-error", "https://cdn.example.com/fail.mp4",
         lambda j: j["error_message"] == "\x00video\x00 URL is not accessible\x07\x1b" and j["status"] == "failed"),
        ("long-error", "https://cdn.example.com/fail.mp4",
         lambda j: len(j["error_message"]) > 100_000 and j["error_message"].startswith("video URL is not accessible")),
        ("lone-surrogate", "https://cdn.example.com/fail.mp4", lambda j: j["error_message"].endswith(" \ud800")),
        ("long-output-url", V, lambda j: 2048 < len(j["output_url"]) < 64 * 1024),
        ("huge-output-url", V, lambda j: len(j["output_url"]) > 64 * 1024),
        ("non-http-output-url", V, lambda j: j["output_url"].startswith("ftp://")),
        ("bad-reference-id", V, lambda j: len(j["reference_id"]) > 128 and "\x00" in j["reference_id"]),
    ],
)
def test_each_kind_of_bad_reply(sb, kind, video, check):
    job_id = sb.create_job(video_url=video, audio_url=A, reference_id="ref")["id"]
    sb.advance(60)
    sb.faults.bad_replies = {job_id: kind}
    reply = call(sb, "GET", f"{REQUESTS}/{job_id}")
    assert reply.status == 200 and check(reply.json)  # still valid JSON, whatever it carries
    assert check(call(sb, "GET", REQUESTS).json["data"][0])


def test_a_long_output_link_still_plays(sb):
    job_id = sb.create_job(video_url=V, audio_url=A)["id"]
    sb.advance(60)
    sb.faults.bad_replies = {job_id: "long-output-url"}
    link = urlsplit(call(sb, "GET", f"{REQUESTS}/{job_id}").json["output_url"])
    assert call(sb, "GET", f"{link.path}?{link.query}", token=None).body == MP4


def test_output_link_kinds_leave_unfinished_jobs_alone(sb):
    job_id = sb.create_job(video_url=V, audio_url=A)["id"]
    sb.faults.bad_replies = {job_id: "huge-output-url"}
    assert "output_url" not in call(sb, "GET", f"{REQUESTS}/{job_id}").json


def test_bad_replies_through_the_control_endpoint(sb):
    job_id = sb.create_job(video_url=V, audio_url=A)["id"]
    reply = call(sb, "POST", "/_sandbox/faults", token=None, json_body={"bad_replies": {job_id: "nul-in-status"}})
    assert reply.status == 200 and reply.json["bad_replies"] == {job_id: "nul-in-status"}
    assert call(sb, "GET", "/_sandbox/faults", token=None).json["bad_replies"] == {job_id: "nul-in-status"}
    assert "\x00" in call(sb, "GET", f"{REQUESTS}/{job_id}").json["status"]
    for bad in [{"bad_replies": {job_id: "explode"}}, {"bad_replies": ["nul-in-status"]}, {"bad_replies": {"": "long-status"}}]:
        assert call(sb, "POST", "/_sandbox/faults", token=None, json_body=bad).status == 400, bad
    assert call(sb, "POST", "/_sandbox/faults", token=None, json_body={"bad_replies": {}}).json["bad_replies"] == {}
    sb.faults.bad_replies = {"*": "long-status"}
    sb.reset()
    assert sb.faults.bad_replies == {}


def test_request_paths_are_recorded_as_received(sb):
    call(sb, "GET", f"{REQUESTS}/a%2Fb%25c?limit=1")
    call(sb, "GET", f"{REQUESTS}/..")
    call(sb, "GET", "/files/sample-video.mp4", token=None)  # not an API request
    assert sb.request_paths() == [f"{REQUESTS}/a%2Fb%25c", f"{REQUESTS}/.."]
    sb.reset()
    assert sb.request_paths() == []


@pytest.mark.parametrize("segment", ["..", "%2E%2E", ".%2e", ".", "%2E"])
def test_dot_segments_are_resolved_before_routing_as_servers_do(sb, segment):
    sb.create_job(video_url=V, audio_url=A, reference_id=segment.replace("%2E", ".").replace("%2e", "."))
    reply = call(sb, "GET", f"{REQUESTS}/{segment}")
    assert (reply.status, reply.error) == (404, "not found")  # /api/v1/lipsync/ or /api/v1/lipsync/requests/
    assert call(sb, "GET", f"{REQUESTS}/x/../{sb.jobs()[0]['id']}").status == 200


def test_percent_encoded_ids_are_decoded_once(sb):
    sb.create_job(video_url=V, audio_url=A, reference_id="50%off/a b")
    sb.create_job(video_url=V, audio_url=A, reference_id="a%2Fb")
    assert call(sb, "GET", f"{REQUESTS}/{quote('50%off/a b', safe='')}").json["reference_id"] == "50%off/a b"
    assert call(sb, "GET", f"{REQUESTS}/{quote('a%2Fb', safe='')}").json["reference_id"] == "a%2Fb"


def test_latency_applies_to_api_not_files(sb):
    sb.faults.latency = 0.3
    started = time.monotonic()
    assert call(sb, "GET", "/api/health").status == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert call(sb, "GET", "/files/sample-audio.wav", token=None).status == 200
    assert time.monotonic() - started < 0.3


# --------------------------------------------------------------------------- static files


def test_sample_files(sb):
    for path, content_type, data in [
        ("/files/sample-video.mp4", "video/mp4", MP4),
        ("/files/sample-audio.wav", "audio/wav", WAV),
        ("/files/sample-audio.mp3", "audio/mpeg", MP3),
    ]:
        reply = call(sb, "GET", path, token=None)
        assert (reply.status, reply.headers["Content-Type"], reply.body) == (200, content_type, data)
        assert reply.headers["Accept-Ranges"] == "bytes"
        head = call(sb, "HEAD", path, token=None)
        assert head.status == 200 and head.body == b"" and head.headers["Content-Length"] == str(len(data))
    assert MP4[4:8] == b"ftyp" and WAV[:4] == b"RIFF" and WAV[8:12] == b"WAVE"
    assert sb.sample_video_url == f"{sb.root_url}/files/sample-video.mp4"
    assert sb.sample_audio_url == f"{sb.root_url}/files/sample-audio.wav"
    assert call(sb, "GET", "/files/nope.mp4", token=None).status == 404
    assert call(sb, "POST", "/files/sample-video.mp4", token=None).status == 405


def test_range_requests(sb):
    size = len(MP4)
    part = call(sb, "GET", "/files/sample-video.mp4", token=None, headers={"Range": "bytes=0-99"})
    assert (part.status, part.body, part.headers["Content-Range"]) == (206, MP4[:100], f"bytes 0-99/{size}")
    tail = call(sb, "GET", "/files/sample-video.mp4", token=None, headers={"Range": "bytes=-10"})
    assert (tail.status, tail.body) == (206, MP4[-10:])
    rest = call(sb, "GET", "/files/sample-video.mp4", token=None, headers={"Range": f"bytes={size - 5}-"})
    assert (rest.status, rest.body) == (206, MP4[-5:])
    beyond = call(sb, "GET", "/files/sample-video.mp4", token=None, headers={"Range": f"bytes={size}-"})
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"


def test_output_files_exist_only_for_completed_jobs(sb):
    job = sb.create_job(video_url=V, audio_url=A, token=QUOTA_USED_UP_TOKEN)  # any account
    path = f"/files/output/{job['id']}.mp4"
    assert call(sb, "GET", path, token=None).status == 404  # still queued
    sb.advance(30)
    assert call(sb, "GET", path, token=None).body == MP4
    assert call(sb, "GET", f"/files/output/{uuid.uuid4()}.mp4", token=None).status == 404


def test_files_ignore_faults(sb):
    sb.faults.rate_500 = 1.0
    sb.faults.script = ["drop"]
    assert call(sb, "GET", "/files/sample-video.mp4", token=None).status == 200
    assert sb.faults.script == ["drop"]


# --------------------------------------------------------------------------- control endpoints and reset


def test_control_endpoints(sb):
    generate(sb)
    state = call(sb, "GET", "/_sandbox/state", token=None).json
    assert state["stats"]["generate"] == 1 and state["jobs"]["total"] == 1
    assert state["jobs"]["by_status"] == {"queued": 1}
    assert DEMO_TOKEN not in json.dumps(state)

    faults = call(sb, "POST", "/_sandbox/faults", token=None, json_body={"script": ["500"], "latency": 0})
    assert faults.status == 200 and faults.json["script"] == ["500"]
    assert generate(sb).status == 500
    for bad in [{"nope": 1}, {"script": ["explode"]}, {"rate_500": 2}, {"latency": "slow"}]:
        assert call(sb, "POST", "/_sandbox/faults", token=None, json_body=bad).status == 400, bad

    assert call(sb, "POST", "/_sandbox/advance", token=None, json_body={"seconds": 30}).status == 200
    assert sb.jobs()[0]["status"] == "completed"
    assert call(sb, "POST", "/_sandbox/advance", token=None, json_body={"seconds": "x"}).status == 400

    created = call(sb, "POST", "/_sandbox/jobs", token=None, json_body={"video_url": V, "audio_url": A}).json
    status = call(sb, "POST", "/_sandbox/status", token=None, json_body={"id": created["id"], "status": "odd"})
    assert status.status == 200 and sb.jobs()[-1]["status"] == "odd"
    config = call(sb, "POST", "/_sandbox/config", token=None, json_body={"job_seconds": 0, "rate_limit_per_minute": 5})
    assert config.json == {"job_seconds": 0.0, "rate_limit_per_minute": 5, "output_bytes": 0}

    assert call(sb, "POST", "/_sandbox/reset", token=None).status == 200
    assert sb.jobs() == [] and sb.job_seconds == 30.0 and sb.rate_limit_per_minute == 60
    assert call(sb, "GET", "/_sandbox/reset", token=None).status == 405
    assert call(sb, "GET", "/_sandbox/nope", token=None).status == 404


def test_reset_forgets_everything(sb):
    sb.rate_limit_per_minute = 1
    sb.job_seconds = 5
    generate(sb)
    assert generate(sb).status == 429
    sb.faults.script = ["500"]
    sb.advance(100)
    sb.reset()
    assert sb.jobs() == [] and sb.faults == Faults()
    assert (sb.job_seconds, sb.rate_limit_per_minute) == (30.0, 60)
    assert all(value == 0 for value in sb.stats().values())
    assert generate(sb).status == 200
    assert sb.jobs()[0]["status"] == "queued"  # the clock offset is gone


def test_stats_count_requests(sb):
    call(sb, "GET", "/api/health")
    generate(sb)
    call(sb, "GET", REQUESTS)
    call(sb, "GET", f"{REQUESTS}/nope")
    stats = sb.stats()
    assert (stats["requests"], stats["generate"], stats["list"], stats["get"]) == (4, 1, 1, 1)
    assert stats["status_404"] == 1 and stats["status_429"] == 0 and stats["status_500"] == 0


# --------------------------------------------------------------------------- robustness


def test_keep_alive_survives_errors(sb):
    conn = http.client.HTTPConnection(sb.host, sb.port, timeout=5)
    try:
        for headers, body, expected in [
            ({"x-api-key": "bad"}, b'{"inputs": []}', 401),  # body left unread by the server, then drained
            ({"x-api-key": DEMO_TOKEN, "Content-Type": "application/json"}, b"{", 400),
            ({"x-api-key": DEMO_TOKEN, "Content-Type": "application/json"}, json.dumps({"inputs": inputs()}).encode(), 200),
        ]:
            conn.request("POST", GENERATE, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == expected
        conn.request("GET", "/api/health")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01\x02garbage\r\n\r\n",
        b"GET /api/health HTTP/9.9\r\n\r\n",
        b"POST /api/v1/lipsync/generate HTTP/1.1\r\nContent-Length: nope\r\nx-api-key: sandbox-demo-token\r\n\r\n",
        b"POST /api/v1/lipsync/generate HTTP/1.1\r\nContent-Length: 100\r\nx-api-key: sandbox-demo-token\r\n\r\nshort",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
        b"POST /api/v1/lipsync/generate HTTP/1.1\r\nTransfer-Encoding: chunked\r\nx-api-key: sandbox-demo-token\r\n"
        b"Content-Type: application/json\r\n\r\nzz\r\n",
    ],
)
def test_malformed_requests_do_not_hurt_the_server(sb, raw, capfd):
    with socket.create_connection((sb.host, sb.port), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received == b"" or re.match(rb"HTTP/1\.1 [45]\d\d ", received), received[:200]
    assert call(sb, "GET", "/api/health").status == 200
    assert "Traceback" not in capfd.readouterr().err


def test_chunked_json_body_is_accepted(sb):
    payload = json.dumps({"inputs": inputs()}).encode()
    body = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
    conn = http.client.HTTPConnection(sb.host, sb.port, timeout=5)
    try:
        conn.putrequest("POST", GENERATE)
        for name, value in [("x-api-key", DEMO_TOKEN), ("Content-Type", "application/json"),
                            ("Transfer-Encoding", "chunked")]:
            conn.putheader(name, value)
        conn.endheaders(body)
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_concurrent_clients(sb):
    """A few hundred requests from several threads, on keep-alive connections."""
    sb.rate_limit_per_minute = 1000
    failures: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(sb.host, sb.port, timeout=10)
        body = json.dumps({"inputs": inputs()}).encode()
        try:
            for i in range(40):
                if i % 4 == 0:
                    conn.request("POST", GENERATE, body=body,
                                 headers={"x-api-key": DEMO_TOKEN, "Content-Type": "application/json"})
                else:
                    conn.request("GET", f"{REQUESTS}?limit=5", headers={"x-api-key": DEMO_TOKEN})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(str(response.status))
        except Exception as error:
            failures.append(repr(error))
        finally:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - started
    assert failures == []
    assert len(sb.jobs()) == 80
    assert elapsed < 10, f"320 requests took {elapsed:.1f} s"


def test_verbose_log_never_shows_tokens(capfd):
    with SandboxServer(port=0, verbose=True) as loud:
        call(loud, "GET", "/api/v1/users/me", headers={"Authorization": f"Bearer {DEMO_TOKEN}"}, token=None)
        call(loud, "GET", "/api/v1/users/me", token="some-secret-guess")
    err = capfd.readouterr().err
    assert "GET /api/v1/users/me -> 200" in err and "-> 401" in err
    assert DEMO_TOKEN not in err and "some-secret-guess" not in err


def test_quiet_by_default(sb, capfd):
    call(sb, "GET", "/api/health")
    assert capfd.readouterr().err == ""


def test_lifecycle():
    sandbox = SandboxServer(port=0, job_seconds=1, rate_limit_per_minute=2)
    assert sandbox.port > 0 and sandbox.base_url == f"http://127.0.0.1:{sandbox.port}/api"
    sandbox.start()
    sandbox.start()  # idempotent while running
    # An idle keep-alive connection must not keep stop() waiting.
    idle = http.client.HTTPConnection(sandbox.host, sandbox.port, timeout=5)
    idle.request("GET", "/api/health")
    idle.getresponse().read()
    started = time.monotonic()
    sandbox.stop()
    sandbox.stop()
    assert time.monotonic() - started < 3
    with pytest.raises(OSError):
        socket.create_connection((sandbox.host, sandbox.port), timeout=1).close()
    idle.close()
    with pytest.raises(ValueError):
        SandboxServer("0.0.0.0")


def test_command_line_serves_and_stops_on_sigterm():
    """The same code path `manage.py sandbox` uses: banner, serve, SIGTERM, exit 0."""
    script = Path(sys.modules[SandboxServer.__module__].__file__)
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--job-seconds", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = [process.stdout.readline() for _ in range(3)]
        match = re.search(r"http://127\.0\.0\.1:(\d+)", banner[0])
        assert match, banner
        port = int(match.group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/api/health")
        assert conn.getresponse().status == 200
        conn.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        out = "".join(banner) + process.stdout.read()
        err = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert DEMO_TOKEN in out and QUOTA_USED_UP_TOKEN in out and "/files/sample-video.mp4" in out
    assert "Traceback" not in err
    assert "GET /api/health -> 200" in err


# --------------------------------------------------------------------------- the browser


LOAD_VIDEO_JS = """
(src) => {
  const video = document.createElement("video");
  video.id = "played-video";
  video.muted = true;
  video.preload = "auto";
  document.body.appendChild(video);
  video.src = src;
}
"""

# The decoded frame in coarse colours: a real test pattern has many, a black frame one.
FRAME_JS = """
video => {
  video.pause();
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(video, 0, 0);
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const seen = new Set();
  for (let i = 0; i < pixels.length; i += 4 * 97) seen.add(pixels[i] >> 5 << 6 | pixels[i+1] >> 5 << 3 | pixels[i+2] >> 5);
  return { colours: seen.size, width: video.videoWidth, height: video.videoHeight, duration: video.duration };
}
"""


@pytest.mark.browser
def test_chromium_plays_the_output_video(sb, page):
    from tests.browser_waits import wait_for_video_data, wait_until

    sb.job_seconds = 0
    job = sb.create_job(video_url=sb.sample_video_url, audio_url=sb.sample_audio_url)
    assert job["status"] == "completed"
    page.goto(f"{sb.root_url}/_sandbox/state")  # a page from the sandbox's own origin
    page.evaluate(LOAD_VIDEO_JS, job["output_url"])
    video = page.locator("#played-video")
    state = wait_for_video_data(video, timeout=15)
    assert state["error"] is None and state["readyState"] >= 2, state
    assert video.evaluate("video => video.play().then(() => true, (e) => `play() failed: ${e}`)") is True
    wait_until(video, "video => video.currentTime", what="playback past 0.3 s", until=lambda t: t >= 0.3)
    result = video.evaluate(FRAME_JS)
    assert (result["width"], result["height"]) == (320, 180), result
    assert 1.5 <= result["duration"] <= 3, result
    assert result["colours"] > 5, result  # a real decoded test pattern, not a black frame
