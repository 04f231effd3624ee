"""Configuration from the environment, checked in fresh processes exactly as a deployment starts."""

from pathlib import Path

import pytest

from tests.processes import PRODUCTION_LIKE, manage

ROOT = Path(__file__).resolve().parents[2]
def test_check_deploy_is_clean_for_a_production_like_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_LIKE)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_warns_when_hardening_is_switched_off():
    result = manage("check", "--deploy", **PRODUCTION_LIKE, SECURE_HSTS_SECONDS="0", SESSION_COOKIE_SECURE="false")
    assert "security.W004" in result.stderr and "security.W012" in result.stderr


def test_refuses_to_start_without_a_secret_key_when_not_debugging():
    result = manage("check", **{**PRODUCTION_LIKE, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_refuses_a_weak_secret_key_when_not_debugging():
    result = manage("check", **{**PRODUCTION_LIKE, "SECRET_KEY": "short"})
    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be true or false, not 'maybe'"),
        ("SESSION_COOKIE_SECURE", "ture", "SESSION_COOKIE_SECURE must be true or false"),
        ("CHAMELAION_READ_TIMEOUT", "-3", "CHAMELAION_READ_TIMEOUT must be a positive number of seconds"),
        ("CHAMELAION_CONNECT_TIMEOUT", "fast", "CHAMELAION_CONNECT_TIMEOUT must be a positive number"),
        ("SECURE_HSTS_SECONDS", "one year", "SECURE_HSTS_SECONDS must be a whole number"),
        ("CHAMELAION_BASE_URL", "api.chamelaion.com", "CHAMELAION_BASE_URL must be an absolute http(s) URL"),
    ],
)
def test_bad_values_stop_start_up_with_a_clear_message(name, value, message):
    result = manage("check", **{**PRODUCTION_LIKE, name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_debug_runs_without_a_secret_key_in_sandbox_mode():
    result = manage("shell", "-c", "from submissions.apikey.clients import get_client, is_sandbox_mode;"
                    "print(is_sandbox_mode(), get_client().base_url)", DEBUG="true", CHAMELAION_API_KEY="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True http://127.0.0.1:8765/api"


def test_a_key_in_the_environment_leaves_sandbox_mode():
    result = manage("shell", "-c", "from submissions.apikey.clients import get_client, is_sandbox_mode;"
                    "print(is_sandbox_mode(), get_client().base_url)", DEBUG="true", CHAMELAION_API_KEY="k")
    assert result.stdout.strip().splitlines()[-1] == "False https://api.chamelaion.com/api"


def test_static_files_are_collected_with_hashed_names(tmp_path):
    static_root = tmp_path / "static"
    env = {**PRODUCTION_LIKE}
    code = (
        "from django.conf import settings; from django.core.management import call_command;"
        f"settings.STATIC_ROOT = {str(static_root)!r}; call_command('collectstatic', '--noinput', verbosity=0);"
        "from django.templatetags.static import static; print(static('css/dubdash.css'))"
    )
    result = manage("shell", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith("/static/css/dubdash.") and url.endswith(".css") and url != "/static/css/dubdash.css"
    assert (static_root / url.removeprefix("/static/")).exists()


def test_postgresql_connections_are_kept_across_requests_and_checked():
    show = (
        "from django.conf import settings; d = settings.DATABASES['default']; "
        "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])"
    )
    postgres = {**PRODUCTION_LIKE, "DATABASE_URL": "postgres://dubdash@127.0.0.1:5432/dubdash"}
    assert manage("shell", "-c", show, **postgres).stdout.splitlines()[-1] == "60 True"
    assert manage("shell", "-c", show, **postgres, DATABASE_CONN_MAX_AGE="0").stdout.splitlines()[-1] == "0 True"
    refused = manage("check", **postgres, DATABASE_CONN_MAX_AGE="-5")
    assert refused.returncode != 0 and "DATABASE_CONN_MAX_AGE must be a whole number" in refused.stderr
