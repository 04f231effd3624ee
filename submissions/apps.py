from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "submissions"
    verbose_name = "Lip-sync submissions"

    def ready(self) -> None:
        # The modules defining short-cached values register them on import; signals then clear them.
        from submissions.core import context_processors, shortcache  # noqa: F401 - registers its short-cached values
        from submissions.jobs import selectors  # noqa: F401 - registers its short-cached values

        shortcache.connect_signals()
