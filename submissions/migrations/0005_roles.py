from django.contrib.auth.management import create_permissions
from django.db import migrations

# Frozen here (not imported from submissions.roles): a migration must do the same thing forever.
_VIEW = ["submissions.view_team_history"]
_SUBMIT = _VIEW + ["submissions.submit_jobs"]
PERMISSIONS = {
    "Viewer": _VIEW,
    "Submitter": _SUBMIT,
    "Team admin": _SUBMIT
    + [
        "submissions.retry_any_job",
        "submissions.manage_api_key",
        "submissions.manage_members",
        "submissions.view_usage",
        "submissions.view_submission",
        "submissions.change_submission",
        "submissions.view_batch",
        "submissions.view_problem",
        "submissions.delete_problem",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
    ],
}


def create_roles(apps, schema_editor):
    # On a fresh database the permissions are only made after all migrations: make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for name in names:
            app_label, codename = name.split(".")
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("submissions", "0004_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
