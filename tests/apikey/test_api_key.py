"""The Chamelaion API key stored in DubDash: encrypted at rest, rotatable, write-only, taking precedence over
the environment's key, used without a restart, and tested from the settings page."""

import io
import socket
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from submissions import chamelaion, roles
from submissions.apikey import clients, keys
from submissions.models import ApiCredential, Problem
from submissions.sandbox import DEMO_TOKEN
from tests import processes
from tests.factories import make_member, make_part
from tests.processes import PRODUCTION_LIKE

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cml_live_9d2f7a61c4e84b0f3f9a"
OTHER_TOKEN = "cml_live_0b4e1c55d7a94e2a77c1"
ENV_TOKEN = "cml_env_5e8b2d90a1f34c6d8e20"
PAGE = "submissions:api_key"
TEST = "submissions:api_key_test"


@pytest.fixture
def encryption_keys(settings):
    keys = [Fernet.generate_key().decode()]
    settings.DUBDASH_ENCRYPTION_KEYS = keys
    return keys


@pytest.fixture
def team_admin(db):
    return make_part("staff_team_admin", username="ayla", password="keys-and-more-keys")


@pytest.fixture
def admin_page(client, team_admin):
    client.force_login(team_admin)
    return client


@pytest.fixture
def live_sandbox(sandbox, settings):
    """A stored or environment key is sent to CHAMELAION_BASE_URL: point it at the sandbox too."""
    settings.CHAMELAION_BASE_URL = sandbox.base_url
    return sandbox


def raw_column() -> str:
    with connection.cursor() as cursor:
        # The table name comes from the model, not from any input.
        cursor.execute(f"SELECT encrypted_token FROM {ApiCredential._meta.db_table}")  # noqa: S608 - no input in it
        return cursor.fetchone()[0]


def client_key(client: chamelaion.ChamelaionClient) -> str:
    return client._api_key


# --- Encryption at rest -----------------------------------------------------------------------------------


def test_the_key_is_stored_encrypted_and_decrypts_with_the_configured_keys(encryption_keys, team_admin):
    credential = keys.store_api_key(token=TOKEN, user=team_admin)

    stored = raw_column()
    assert TOKEN not in stored and TOKEN[:12] not in stored and TOKEN[-8:] not in stored
    assert MultiFernet([Fernet(key) for key in encryption_keys]).decrypt(stored.encode()).decode() == TOKEN
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(stored.encode())
    assert credential.last_four == "3f9a" and credential.updated_by == team_admin
    assert keys.stored_api_key() == TOKEN
    assert ApiCredential.objects.count() == 1


def test_there_is_only_ever_one_row(encryption_keys, team_admin):
    keys.store_api_key(token=TOKEN, user=team_admin)
    keys.store_api_key(token=OTHER_TOKEN, user=team_admin)
    assert ApiCredential.objects.count() == 1 and keys.stored_api_key() == OTHER_TOKEN

    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():  # the database itself refuses a second row
        ApiCredential.objects.create(id=2, encrypted_token="x", last_four="abcd")


def test_a_wrong_encryption_key_is_a_clear_error_not_a_crash(
    settings, encryption_keys, team_admin, admin_page, live_sandbox
):
    keys.store_api_key(token=TOKEN, user=team_admin)
    settings.DUBDASH_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key was dropped too early

    with pytest.raises(keys.UndecryptableKey, match="cannot be decrypted with any key in DUBDASH_ENCRYPTION_KEYS"):
        keys.stored_api_key()
    # Never silently another key or the sandbox: calls that need the key fail as a rejected key does.
    assert keys.active_key_source() == "stored" and not clients.is_sandbox_mode()
    client = clients.get_client()
    assert client.health() is True
    with pytest.raises(chamelaion.Unauthorized) as caught:
        client.me()
    assert "DUBDASH_ENCRYPTION_KEYS" in caught.value.detail

    page = admin_page.get(reverse(PAGE))
    assert page.status_code == 200
    assert "cannot be decrypted with any key in DUBDASH_ENCRYPTION_KEYS" in page.content.decode()
    check = admin_page.post(reverse(TEST)).content.decode()
    assert "cannot be decrypted" in check and "Connected as" not in check


def test_rotation_re_encrypts_with_the_new_first_key(settings, team_admin):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.DUBDASH_ENCRYPTION_KEYS = [old]
    keys.store_api_key(token=TOKEN, user=team_admin)
    before = raw_column()

    settings.DUBDASH_ENCRYPTION_KEYS = [new, old]  # step 1: the new key first, the old one still there
    assert keys.stored_api_key() == TOKEN  # MultiFernet: every key decrypts
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "Re-encrypted the stored Chamelaion API key" in out.getvalue()
    after = raw_column()
    assert after != before and TOKEN not in after
    assert Fernet(new).decrypt(after.encode()).decode() == TOKEN

    settings.DUBDASH_ENCRYPTION_KEYS = [new]  # step 2: the old key removed from the environment
    assert keys.stored_api_key() == TOKEN
    assert client_key(clients.get_client()) == TOKEN


def test_rotation_without_the_old_key_says_what_to_do(settings, team_admin):
    settings.DUBDASH_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    keys.store_api_key(token=TOKEN, user=team_admin)
    settings.DUBDASH_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="Put that key back"):
        call_command("rotate_encryption_keys", stdout=io.StringIO())


def test_rotation_with_nothing_stored(encryption_keys):
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "nothing to re-encrypt" in out.getvalue()


# --- Configuration: checked in fresh processes, as a deployment starts ------------------------------------


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py in a fresh process, production-like, on a database of its own."""
    return processes.manage(*args, **{**PRODUCTION_LIKE, "DATABASE_URL": "sqlite:////tmp/dubdash-api-key-test.sqlite3", **env})


@pytest.mark.parametrize(
    ("value", "position"),
    [("not-a-fernet-key", 1), (f"{Fernet.generate_key().decode()}, c2hvcnQ=", 2)],
    ids=["the-only-key", "the-second-key"],  # the same names in every process (the key itself is random)
)
def test_a_malformed_encryption_key_stops_start_up_naming_the_variable(value, position):
    result = manage("check", DUBDASH_ENCRYPTION_KEYS=value)
    assert result.returncode != 0
    assert f"DUBDASH_ENCRYPTION_KEYS: key number {position} is not a Fernet key" in result.stderr
    assert value.split(",")[-1].strip() not in result.stderr  # a secret: never echoed


SHOW_KEYS = (
    "import hashlib; from django.conf import settings; keys = settings.DUBDASH_ENCRYPTION_KEYS;"
    "print(len(keys), hashlib.sha256(','.join(keys).encode()).hexdigest())"
)


def test_debug_without_keys_derives_a_stable_development_key_from_the_secret_key():
    first = manage("shell", "-c", SHOW_KEYS, DEBUG="true", SECRET_KEY="", DUBDASH_ENCRYPTION_KEYS="")
    again = manage("shell", "-c", SHOW_KEYS, DEBUG="true", SECRET_KEY="", DUBDASH_ENCRYPTION_KEYS="")
    assert first.returncode == 0, first.stderr
    count, digest = first.stdout.strip().splitlines()[-1].split()
    assert count == "1" and again.stdout.strip().splitlines()[-1] == f"1 {digest}"

    other_secret = manage(
        "shell", "-c", SHOW_KEYS, DEBUG="true", SECRET_KEY="another-dev-secret", DUBDASH_ENCRYPTION_KEYS=""
    )
    assert other_secret.stdout.strip().splitlines()[-1] != f"1 {digest}"


def test_production_without_keys_starts_but_has_no_encryption_key():
    result = manage("shell", "-c", SHOW_KEYS, DUBDASH_ENCRYPTION_KEYS="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("0 ")

    key = Fernet.generate_key().decode()
    configured = manage("shell", "-c", SHOW_KEYS, DUBDASH_ENCRYPTION_KEYS=f"{key},{Fernet.generate_key().decode()}")
    assert configured.stdout.strip().splitlines()[-1].startswith("2 ")


def test_before_migrate_runs_a_missing_table_means_nothing_is_stored(tmp_path):
    """New code may start before `migrate`: that is "no stored key", not a crash on every page."""
    show = "from submissions.apikey.clients import is_sandbox_mode, get_client; print(is_sandbox_mode(), get_client().base_url)"
    empty = f"sqlite:///{tmp_path / 'not-migrated.sqlite3'}"
    result = manage("shell", "-c", show, DATABASE_URL=empty, CHAMELAION_API_KEY="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True http://127.0.0.1:8765/api"
    with_env = manage("shell", "-c", show, DATABASE_URL=empty, CHAMELAION_API_KEY=ENV_TOKEN)
    assert with_env.stdout.strip().splitlines()[-1] == "False https://api.chamelaion.com/api"


def test_without_encryption_keys_storing_is_refused_and_the_environment_key_still_works(settings, team_admin, admin_page):
    settings.DUBDASH_ENCRYPTION_KEYS = []
    settings.CHAMELAION_API_KEY = ENV_TOKEN
    with pytest.raises(keys.EncryptionNotConfigured, match="DUBDASH_ENCRYPTION_KEYS is not set"):
        keys.store_api_key(token=TOKEN, user=team_admin)

    page = admin_page.get(reverse(PAGE)).content.decode()
    assert "DUBDASH_ENCRYPTION_KEYS is not set" in page and 'name="api_key"' not in page
    refused = admin_page.post(reverse(PAGE), {"action": "save", "api_key": TOKEN}).content.decode()
    assert "DUBDASH_ENCRYPTION_KEYS is not set" in refused and TOKEN not in refused
    assert not ApiCredential.objects.exists()
    assert keys.active_key_source() == "environment" and client_key(clients.get_client()) == ENV_TOKEN


# --- Precedence and no restart ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "environment", "source", "key"),
    [
        (None, "", "sandbox", DEMO_TOKEN),
        (None, ENV_TOKEN, "environment", ENV_TOKEN),
        (TOKEN, "", "stored", TOKEN),
        (TOKEN, ENV_TOKEN, "stored", TOKEN),
    ],
)
def test_precedence_stored_then_environment_then_sandbox(
    settings, sandbox, encryption_keys, team_admin, stored, environment, source, key
):
    settings.CHAMELAION_API_KEY = environment
    if stored:
        keys.store_api_key(token=stored, user=team_admin)
    assert keys.active_key_source() == source
    assert clients.is_sandbox_mode() is (source == "sandbox")
    client = clients.get_client()
    assert client_key(client) == key
    assert client.base_url == (settings.CHAMELAION_SANDBOX_URL if source == "sandbox" else settings.CHAMELAION_BASE_URL)


def test_removing_the_stored_key_falls_back_to_the_environment_then_sandbox(settings, encryption_keys, team_admin):
    settings.CHAMELAION_API_KEY = ENV_TOKEN
    keys.store_api_key(token=TOKEN, user=team_admin)
    assert keys.clear_api_key(user=team_admin) is True
    assert keys.active_key_source() == "environment" and client_key(clients.get_client()) == ENV_TOKEN
    assert keys.clear_api_key(user=team_admin) is False
    settings.CHAMELAION_API_KEY = ""
    assert clients.is_sandbox_mode()


def test_a_key_set_on_the_page_is_used_at_once_without_a_restart(
    settings, encryption_keys, admin_page, django_assert_num_queries
):
    settings.CHAMELAION_API_KEY = ENV_TOKEN
    assert client_key(clients.get_client()) == ENV_TOKEN
    admin_page.post(reverse(PAGE), {"action": "save", "api_key": TOKEN})
    assert client_key(clients.get_client()) == TOKEN

    # Another process rotates the key: this one sees it at its next (single, small) query.
    ciphertext = Fernet(encryption_keys[0]).encrypt(OTHER_TOKEN.encode()).decode()
    ApiCredential.objects.update(encrypted_token=ciphertext, last_four=OTHER_TOKEN[-4:], updated_at=timezone.now())
    with django_assert_num_queries(1):
        client = clients.get_client()
    assert client_key(client) == OTHER_TOKEN
    with django_assert_num_queries(1):  # decrypted once per change, then cached
        assert client_key(clients.get_client()) == OTHER_TOKEN
    with django_assert_num_queries(1):
        assert clients.is_sandbox_mode() is False


def test_no_key_anywhere_is_sandbox_mode_with_the_banner(sandbox, encryption_keys, admin_page):
    page = admin_page.get(reverse(PAGE)).content.decode()
    assert "banner-sandbox" in page and "sandbox mode" in page
    assert 'value="remove"' not in page  # nothing stored: nothing to remove

    admin_page.post(reverse(PAGE), {"action": "save", "api_key": TOKEN})
    assert "banner-sandbox" not in admin_page.get(reverse(PAGE)).content.decode()


# --- Test connection --------------------------------------------------------------------------------------


def test_test_connection_names_the_token(live_sandbox, encryption_keys, admin_page):
    admin_page.post(reverse(PAGE), {"action": "save", "api_key": DEMO_TOKEN})
    Problem.objects.create(code=Problem.Code.API_KEY_REJECTED, message="rejected", pauses_polling=True)
    page = admin_page.post(reverse(TEST)).content.decode()
    assert "Connected as “DubDash sandbox demo”." in page
    assert not Problem.objects.exists()  # an accepted key is the proof the rejection is over


def test_test_connection_in_sandbox_mode_uses_the_sandbox(sandbox, encryption_keys, admin_page):
    page = admin_page.post(reverse(TEST)).content.decode()
    assert "Connected as “DubDash sandbox demo”." in page


def test_test_connection_with_a_wrong_key_says_exactly_what_came_back(live_sandbox, encryption_keys, admin_page):
    admin_page.post(reverse(PAGE), {"action": "save", "api_key": TOKEN})  # unknown to the sandbox
    page = admin_page.post(reverse(TEST)).content.decode()
    assert "the key check (/v1/users/me) failed" in page
    assert "Chamelaion rejected DubDash&#x27;s API key" in page
    assert "Chamelaion said: “invalid token” (HTTP 401)." in page
    assert "Connected as" not in page and TOKEN not in page


def test_test_connection_with_an_unreachable_base_url(settings, sandbox, encryption_keys, admin_page):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CHAMELAION_BASE_URL = f"http://127.0.0.1:{port}/api"
    admin_page.post(reverse(PAGE), {"action": "save", "api_key": TOKEN})
    page = admin_page.post(reverse(TEST)).content.decode()
    assert f"The health check (http://127.0.0.1:{port}/api/health) failed." in page
    assert "DubDash could not reach Chamelaion (network problem)." in page
    assert "What went wrong: connection failed." in page


def test_test_connection_is_post_only(encryption_keys, admin_page):
    assert admin_page.get(reverse(TEST)).status_code == 405


# --- Write-only -------------------------------------------------------------------------------------------


def test_the_page_never_shows_the_key_only_its_last_four(settings, encryption_keys, admin_page):
    settings.CHAMELAION_API_KEY = ENV_TOKEN
    saved = admin_page.post(reverse(PAGE), {"action": "save", "api_key": f"  {TOKEN}\n"}, follow=True)
    page = saved.content.decode()
    assert saved.status_code == 200
    assert "Saved: DubDash now uses the key •••• 3f9a" in page
    assert "The key stored in DubDash, <span class=\"mono\">•••• 3f9a</span>" in page
    assert "•••• 8e20" in page  # the environment's key, which the stored one overrides
    assert TOKEN not in page and TOKEN[:-4] not in page and ENV_TOKEN[:-4] not in page
    field = page[page.index('name="api_key"') - 30 : page.index('name="api_key"') + 200]
    assert 'type="password"' in field and 'autocomplete="off"' in field and "value=" not in field
    assert keys.stored_api_key() == TOKEN  # surrounding blanks trimmed


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("cml_live_9d2f 7a61c4e84b0f", "without spaces or line breaks"),
        ("cml_9d2f7a", "too short to be a Chamelaion API key"),
        ("", "This field is required."),
    ],
)
def test_a_refused_key_is_not_echoed_back(encryption_keys, admin_page, typed, message):
    response = admin_page.post(reverse(PAGE), {"action": "save", "api_key": typed})
    page = response.content.decode()
    assert response.status_code == 200 and message in page
    if typed:
        assert typed not in page
    assert not ApiCredential.objects.exists()


def test_remove_the_stored_key(settings, encryption_keys, admin_page):
    settings.CHAMELAION_API_KEY = ENV_TOKEN
    admin_page.post(reverse(PAGE), {"action": "save", "api_key": TOKEN})
    page = admin_page.post(reverse(PAGE), {"action": "remove"}, follow=True).content.decode()
    assert "Stored key removed. DubDash now uses CHAMELAION_API_KEY (•••• 8e20)." in page
    assert not ApiCredential.objects.exists() and keys.active_key_source() == "environment"


def test_the_settings_page_keeps_the_admin_history_without_the_key(encryption_keys, admin_page, team_admin):
    admin_page.post(reverse(PAGE), {"action": "save", "api_key": TOKEN})
    admin_page.post(reverse(PAGE), {"action": "save", "api_key": OTHER_TOKEN})
    admin_page.post(reverse(PAGE), {"action": "remove"})
    entries = list(LogEntry.objects.order_by("pk").values_list("action_flag", "object_repr", "change_message", "user"))
    assert [(flag, user) for flag, _, _, user in entries] == [(1, team_admin.pk), (2, team_admin.pk), (3, team_admin.pk)]
    assert entries[1][1] == "Chamelaion API key •••• 77c1"
    for _, object_repr, change_message, _ in entries:
        for secret in (TOKEN, OTHER_TOKEN):
            assert secret[:12] not in object_repr + change_message


# --- Django admin -----------------------------------------------------------------------------------------


def test_the_admin_form_is_write_only_and_its_history_holds_no_key(encryption_keys, admin_page, team_admin):
    add = admin_page.get(reverse("admin:submissions_apicredential_add"))
    assert add.status_code == 200 and 'type="password"' in add.content.decode()
    saved = admin_page.post(reverse("admin:submissions_apicredential_add"), {"api_key": TOKEN}, follow=True)
    assert saved.status_code == 200 and TOKEN not in saved.content.decode()
    assert keys.stored_api_key() == TOKEN and TOKEN not in raw_column()

    change_url = reverse("admin:submissions_apicredential_change", args=[ApiCredential.SINGLETON_PK])
    change = admin_page.get(change_url).content.decode()
    assert "•••• 3f9a" in change and TOKEN not in change
    field = change[change.index('name="api_key"') - 30 : change.index('name="api_key"') + 200]
    assert "value=" not in field
    admin_page.post(change_url, {"api_key": OTHER_TOKEN})
    assert keys.stored_api_key() == OTHER_TOKEN
    # One row at most: no "add" once a key is stored.
    assert admin_page.get(reverse("admin:submissions_apicredential_add")).status_code == 403

    history = admin_page.get(reverse("admin:submissions_apicredential_history", args=[1])).content.decode()
    assert "Changed New API key." in history
    messages = LogEntry.objects.values_list("object_repr", "change_message")
    assert len(messages) == 2
    for object_repr, change_message in messages:
        for secret in (TOKEN, OTHER_TOKEN):
            assert secret[:-4] not in object_repr and secret[:-4] not in change_message

    admin_page.post(reverse("admin:submissions_apicredential_delete", args=[1]), {"post": "yes"})
    assert not ApiCredential.objects.exists()


def test_the_admin_needs_the_manage_api_key_permission(client, encryption_keys, django_user_model):
    staff = make_member("sam", role=roles.SUBMITTER, password="x-x-x-x-x-x", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin:submissions_apicredential_changelist")).status_code == 403
    assert client.post(reverse("admin:submissions_apicredential_add"), {"api_key": TOKEN}).status_code == 403
    assert not ApiCredential.objects.exists()


# --- Permissions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [roles.SUBMITTER, roles.VIEWER, None])
def test_only_team_admins_may_see_or_change_the_key(client, django_user_model, encryption_keys, team_admin, role):
    keys.store_api_key(token=TOKEN, user=team_admin)
    person = make_member("someone", role=role, password="x-x-x-x-x-x", is_staff=True)
    client.force_login(person)
    assert client.get(reverse(PAGE)).status_code == 403
    assert client.post(reverse(PAGE), {"action": "save", "api_key": OTHER_TOKEN}).status_code == 403
    assert client.post(reverse(PAGE), {"action": "remove"}).status_code == 403
    assert client.post(reverse(TEST)).status_code == 403
    assert keys.stored_api_key() == TOKEN
    assert reverse(PAGE) not in client.get(reverse("submissions:history")).content.decode()


def test_a_team_admin_may_and_sees_the_link(admin_page):
    assert admin_page.get(reverse(PAGE)).status_code == 200
    assert f'href="{reverse(PAGE)}"' in admin_page.get(reverse("submissions:history")).content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse(PAGE))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
