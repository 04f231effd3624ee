"""The sandbox's finished outputs and the knobs that break them or make them large, over real HTTP."""

from __future__ import annotations

import io

import pytest
import requests
from mutagen.mp4 import MP4

from submissions.sandbox import SandboxServer
from submissions.sandbox.media import EXPIRED_BODY, MEDIA_DIR, output_url

SAMPLE = (MEDIA_DIR / "sample.mp4").read_bytes()


@pytest.fixture(scope="module")
def server():
    with SandboxServer(port=0, seed=7) as sandbox:
        yield sandbox


@pytest.fixture
def sb(server):
    server.reset()
    yield server
    server.reset()


def finished(sb: SandboxServer) -> str:
    job = sb.create_job(video_url=sb.sample_video_url, audio_url=sb.sample_audio_url)
    sb.set_status(job["id"], "completed")
    return output_url(sb.root_url, job["id"])


def control(sb: SandboxServer, path: str, body: object) -> requests.Response:
    return requests.post(f"{sb.root_url}/_sandbox/{path}", json=body, timeout=5)


def test_a_finished_job_serves_its_output_until_a_reset_forgets_it(sb):
    url = finished(sb)
    assert requests.get(url, timeout=5).content == SAMPLE
    control(sb, "reset", {})
    assert requests.get(url, timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [("expired", 403, EXPIRED_BODY), ("gone", 404, None), ("not-mp4", 200, None), ("500", 500, None)],
)
def test_the_outputs_knob_breaks_one_job_or_every_job(sb, kind, status, body):
    url, other = finished(sb), finished(sb)
    job_id = url.rsplit("/", 1)[1].removesuffix(".mp4")
    assert control(sb, "faults", {"outputs": {job_id: kind}}).status_code == 200

    broken = requests.get(url, timeout=5)
    assert broken.status_code == status and broken.content != SAMPLE
    if body is not None:
        assert broken.content == body
    assert requests.get(other, timeout=5).content == SAMPLE  # only the job named

    control(sb, "faults", {"outputs": {"*": kind}})
    assert requests.get(other, timeout=5).status_code == status


def test_a_truncated_output_announces_more_than_it_sends(sb):
    url = finished(sb)
    sb.faults.outputs = {"*": "truncated"}
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=5).content  # noqa: B018 - reading the body is what fails


def test_the_output_size_setting_serves_a_larger_mp4_that_still_reads_as_the_sample(sb):
    url = finished(sb)
    reply = control(sb, "config", {"output_bytes": 3_000_000})
    assert reply.status_code == 200 and reply.json()["output_bytes"] == 3_000_000

    body = requests.get(url, timeout=5).content
    assert len(body) == 3_000_000 and body.startswith(SAMPLE) and body[4:8] == b"ftyp"
    assert MP4(io.BytesIO(body)).info.length == pytest.approx(2.02, abs=0.01)


@pytest.mark.parametrize(
    "bad", [{"outputs": {"*": "melted"}}, {"outputs": ["expired"]}, {"outputs": {"*": 3}}]
)
def test_the_knobs_refuse_what_they_do_not_know(sb, bad):
    reply = control(sb, "faults", bad)
    assert reply.status_code == 400 and "output" in reply.json()["error"]


def test_the_output_size_must_be_a_number(sb):
    assert control(sb, "config", {"output_bytes": "big"}).status_code == 400
    assert control(sb, "config", {"output_bytes": -1}).status_code == 400
