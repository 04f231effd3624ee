from django.contrib.auth.management import create_permissions
from django.db import migrations

# Searching the history uses Django's icontains, which PostgreSQL runs as UPPER(column) LIKE UPPER('%…%').
# Trigram indexes on exactly those expressions let it use an index instead of reading every row.
SEARCHED = ["title", "reference_id", "request_id", "video_url", "audio_url"]


def add_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite has no trigram indexes; it scans, which is fine at its scale
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in SEARCHED:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS submission_search_{column} ON submissions_submission '
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for column in SEARCHED:
            schema_editor.execute(f"DROP INDEX IF EXISTS submission_search_{column}")


# Team admins also read the activity trail and unlock accounts locked out by failed logins.
TEAM_ADMIN_EXTRA = ["submissions.view_activity", "axes.view_accessattempt", "axes.delete_accessattempt"]


def extend_team_admin(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="Team admin").first()
    if group is None:
        return
    for name in TEAM_ADMIN_EXTRA:
        app_label, codename = name.split(".")
        group.permissions.add(*Permission.objects.filter(content_type__app_label=app_label, codename=codename))


class Migration(migrations.Migration):
    dependencies = [("submissions", "0009_history_indexes"), ("axes", "0001_initial")]
    operations = [
        migrations.RunPython(add_search_indexes, drop_search_indexes),
        migrations.RunPython(extend_team_admin, migrations.RunPython.noop),
    ]
