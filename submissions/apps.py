from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "submissions"
    verbose_name = "Lip-sync submissions"

    def ready(self) -> None:
        # The modules defining short-cached values register them on import.
        from submissions import context_processors, selectors, shortcache  # noqa: F401

        shortcache.connect_signals()
