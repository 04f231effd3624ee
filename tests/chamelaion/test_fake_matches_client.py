"""The fake Chamelaion (tests/fakes.py) cannot drift from the real client: it has every public method of
ChamelaionClient, with the same signature, and what the services read besides (calls, base_url). A test
converted to the fake therefore calls exactly what production code calls."""

import inspect

import pytest

from submissions import chamelaion
from submissions.apikey import clients
from tests.fakes import FakeAccount, FakeChamelaionClient


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_the_fake_has_every_public_method_of_the_client_with_the_same_signature():
    real, fake = public_methods(chamelaion.ChamelaionClient), public_methods(FakeChamelaionClient)
    # The services use these: a client method they call must be in this list, and so in the fake.
    used = {"generate", "generate_with_media", "find_by_reference_id", "get_request", "list_requests", "health", "me"}
    assert used <= set(real)
    assert set(fake) == set(real)
    for name, signature in real.items():
        assert fake[name] == signature, f"{name}: fake {fake[name]} != real {signature}"


def test_the_fake_has_the_attributes_the_services_read():
    real = chamelaion.ChamelaionClient(base_url="https://api.example.com/api/", api_key="k")
    fake = FakeChamelaionClient(FakeAccount())
    for name in ("calls", "base_url"):
        assert hasattr(real, name) and hasattr(fake, name), name
    assert type(fake.calls) is type(real.calls) and isinstance(fake.base_url, str)


def test_the_comparison_can_fail():
    class Drifted(FakeChamelaionClient):
        def get_request(self, request_id: str) -> chamelaion.LipsyncRequest:  # a renamed parameter
            return super().get_request(request_id)

    assert public_methods(Drifted)["get_request"] != public_methods(chamelaion.ChamelaionClient)["get_request"]


def test_the_fixture_installs_the_fake_where_services_ask_for_a_client(fake_chamelaion):
    client = clients.get_client()
    assert isinstance(client, FakeChamelaionClient) and client.account is fake_chamelaion


def test_the_fake_raises_the_real_exception_classes(fake_chamelaion):
    client = clients.get_client()
    for fault, error in (("401", chamelaion.Unauthorized), ("412", chamelaion.QuotaExhausted),
                         ("429", chamelaion.RateLimited), ("500", chamelaion.ServerError)):
        fake_chamelaion.faults.script = [fault]
        with pytest.raises(error):
            client.list_requests(limit=1)
    with pytest.raises(chamelaion.NotFound):
        client.get_request("no-such-job")
    with pytest.raises(chamelaion.UnusableId):
        client.get_request("..")
    fake_chamelaion.go_down()
    with pytest.raises(chamelaion.Unreachable) as down:
        client.generate(video_url="https://x/v.mp4", audio_url="https://x/a.wav", reference_id="r-1")
    assert not down.value.may_have_reached_server and fake_chamelaion.jobs() == []


def test_jobs_progress_on_the_fake_clock_as_in_the_sandbox(fake_chamelaion):
    client = clients.get_client()
    request_id = client.generate(video_url="https://x/v.mp4", audio_url="https://x/a.wav", reference_id="r-1")
    failing = client.generate(video_url="https://x/fail.mp4", audio_url="https://x/a.wav", reference_id="r-2")
    assert client.get_request(request_id).status == "queued"
    fake_chamelaion.advance(10)
    assert client.find_by_reference_id("r-1").status == "processing"
    fake_chamelaion.advance(30)
    done = client.get_request(request_id)
    assert done.status == "completed" and done.output_url.endswith(f"/files/output/{request_id}.mp4")
    assert client.get_request(failing).error_message == "video URL is not accessible"
    page = client.list_requests(limit=1, offset=1)
    assert [r.id for r in page.requests] == [failing] and page.total == 2
    assert client.calls == 7 and fake_chamelaion.stats()["generate"] == 2
