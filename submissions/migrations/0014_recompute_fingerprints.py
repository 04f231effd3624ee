"""The inputs fingerprint recomputed on normalised URLs, so that a job typed as HTTP://cdn/a.mp4#t=1
matches one sent earlier as http://cdn/a.mp4.

Not atomic, and apart from 0013's schema changes: each chunk commits on its own, so on PostgreSQL no lock
is held on the table while its rows are read and rewritten (in one transaction with an ALTER TABLE, the
whole table would stay locked against web and worker for the whole rewrite). Running it again is safe:
a row already right is left alone."""

from django.db import migrations

from submissions.jobs.fingerprints import inputs_fingerprint

BATCH = 2000


def recompute_fingerprints(apps, schema_editor):
    # The fingerprint function itself, not a frozen copy: what matters is that stored fingerprints equal
    # what the running code computes for new jobs.
    Submission = apps.get_model("submissions", "Submission")
    rows = Submission.objects.exclude(video_url="").exclude(audio_url="").order_by("pk")
    last = 0
    while True:
        chunk = list(rows.filter(pk__gt=last).values_list("pk", "video_url", "audio_url", "disable_active_speaker_detection", "inputs_fingerprint")[:BATCH])
        if not chunk:
            return
        changed = []
        for pk, video, audio, switch, stored in chunk:
            fingerprint = inputs_fingerprint(video, audio, switch)
            if fingerprint != stored:
                changed.append(Submission(pk=pk, inputs_fingerprint=fingerprint))
        Submission.objects.bulk_update(changed, ["inputs_fingerprint"])
        last = chunk[-1][0]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("submissions", "0013_delivery_failures_and_reachability"),
    ]

    operations = [
        migrations.RunPython(recompute_fingerprints, migrations.RunPython.noop, elidable=True),
    ]
