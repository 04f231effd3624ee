from django.conf import settings

from submissions import credentials, permissions, shortcache
from submissions.models import Problem


def _stored_key_and_problems() -> tuple[bool, list[Problem]]:
    return credentials.has_stored_key(), list(Problem.objects.all())


# Every page shows these banners; what they depend on changes a few times a year.
BANNERS = shortcache.ShortCached(
    "dubdash:banners", _stored_key_and_problems, models=("submissions.ApiCredential", "submissions.Problem")
)


def dubdash(request):
    user = getattr(request, "user", None)
    sees_problems = permissions.can_see_problems(user)
    if settings.CHAMELAION_API_KEY and not sees_problems:
        return {"sandbox_mode": False, "problems": []}  # a key in the environment: nothing to read
    stored_key, problems = BANNERS.get()
    return {
        "sandbox_mode": credentials.key_source(stored=stored_key) == "sandbox",
        # Only administrators can act on these, so only they are shown them.
        "problems": problems if sees_problems else [],
    }
