from django.db import migrations

SEARCHED = ["title", "reference_id", "request_id", "video_url", "audio_url"]


# With GIN's default fastupdate, new rows wait in an unsorted "pending list" (up to 4 MB per index) until
# autovacuum or a later insert merges them, and every search reads that whole list: the search page took
# 16.6 ms just after 100,000 jobs were added, 4.9 ms without the list. A team adds jobs a few at a time,
# so each insert merging its own entries costs little and keeps the search fast at all times.
def without_pending_list(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED:
        schema_editor.execute(f"ALTER INDEX IF EXISTS submission_search_{column} SET (fastupdate = off)")
        schema_editor.execute(f"SELECT gin_clean_pending_list('submission_search_{column}'::regclass)")


def with_pending_list(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED:
        schema_editor.execute(f"ALTER INDEX IF EXISTS submission_search_{column} RESET (fastupdate)")


class Migration(migrations.Migration):
    dependencies = [("submissions", "0010_search_and_admin_permissions")]
    operations = [migrations.RunPython(without_pending_list, with_pending_list)]
