from django.db import migrations

SEARCHED = ["title", "reference_id", "request_id", "video_url", "audio_url"]

# With GIN's defaults, new index entries wait in an unsorted "pending list" of up to 4 MB per index until
# autovacuum or an insert that overflows it merges them, and every search reads that whole list: the search
# page took 16.6 ms just after 100,000 jobs were added, 4.9 ms once merged. Without a pending list
# (fastupdate off) every insert and every status update by the worker writes the five indexes at once: a
# refresh round of 1,000 jobs took 1.2 to 1.5 s instead of 0.8. A 64 kB list keeps both fast: in the
# benchmark the search page's p50 was 6.4 ms with it as without a list, and the round 0.8 s.
PENDING_LIST_KB = 64


def short_pending_list(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED:
        schema_editor.execute(
            f"ALTER INDEX IF EXISTS submission_search_{column} SET (gin_pending_list_limit = {PENDING_LIST_KB})"
        )
        schema_editor.execute(f"SELECT gin_clean_pending_list('submission_search_{column}'::regclass)")


def default_pending_list(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED:
        schema_editor.execute(f"ALTER INDEX IF EXISTS submission_search_{column} RESET (gin_pending_list_limit)")


class Migration(migrations.Migration):
    dependencies = [("submissions", "0010_search_and_admin_permissions")]
    operations = [migrations.RunPython(short_pending_list, default_pending_list)]
