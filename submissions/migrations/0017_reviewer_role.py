"""The Reviewer role (sees the team's history and outputs, approves takes or requests changes) and, for team
admins, reviewing and the mail outbox in admin. Names frozen here: a migration does the same thing forever."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

REVIEWER = ["submissions.view_team_history", "submissions.review_takes"]
TEAM_ADMIN_EXTRA = ["submissions.review_takes", "submissions.view_outgoingemail"]


def _permissions(apps, names):
    Permission = apps.get_model("auth", "Permission")
    found = []
    for name in names:
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def add_reviewer(apps, schema_editor):
    # On a fresh database the permissions are only made after all migrations: make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    reviewer, _ = Group.objects.get_or_create(name="Reviewer")
    reviewer.permissions.set(_permissions(apps, REVIEWER))
    team_admin = Group.objects.filter(name="Team admin").first()
    if team_admin is not None:
        team_admin.permissions.add(*_permissions(apps, TEAM_ADMIN_EXTRA))


def remove_reviewer(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Reviewer").delete()


class Migration(migrations.Migration):
    dependencies = [("submissions", "0016_review_comments_mail_profiles")]
    operations = [migrations.RunPython(add_reviewer, remove_reviewer)]
