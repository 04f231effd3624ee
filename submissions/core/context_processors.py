from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from submissions.apikey import keys
from submissions.core import shortcache
from submissions.models import Problem
from submissions.team import permissions


def _stored_key_and_problems() -> tuple[bool, list[Problem]]:
    return keys.has_stored_key(), list(Problem.objects.all())


# Every page shows these banners; what they depend on changes a few times a year.
BANNERS = shortcache.ShortCached(
    "dubdash:banners", _stored_key_and_problems, models=("submissions.ApiCredential", "submissions.Problem")
)


def dubdash(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    # Lazy: the login page and error pages never ask.
    can = SimpleLazyObject(lambda: permissions.capabilities(user))
    sees_problems = permissions.can_see_problems(user)
    if settings.CHAMELAION_API_KEY and not sees_problems:
        return {"can": can, "sandbox_mode": False, "problems": []}  # a key in the environment: nothing to read
    stored_key, problems = BANNERS.get()
    return {
        "can": can,
        "sandbox_mode": keys.key_source(stored=stored_key) == "sandbox",
        # Only administrators can act on these, so only they are shown them.
        "problems": problems if sees_problems else [],
    }
