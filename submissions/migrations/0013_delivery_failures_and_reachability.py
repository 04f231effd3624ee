"""Delivery failures counted apart from attempts, the "Chamelaion cannot be reached" problem, no control
characters in titles and batch names, and the inputs fingerprint recomputed on normalised URLs so that a
job typed as HTTP://cdn/a.mp4#t=1 matches one sent earlier as http://cdn/a.mp4."""

from django.db import migrations, models

import submissions.text
from submissions.models import inputs_fingerprint

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

    dependencies = [
        ('submissions', '0012_upstream_output_url_text'),
    ]

    operations = [
        migrations.AddField(
            model_name='submission',
            name='failed_deliveries',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='submission',
            name='first_failed_delivery_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='batch',
            name='name',
            field=models.CharField(max_length=200, validators=[submissions.text.refuse_control_characters]),
        ),
        migrations.AlterField(
            model_name='problem',
            name='code',
            field=models.CharField(choices=[('api_key_rejected', 'API key rejected'), ('quota_used_up', 'Plan quota used up'), ('chamelaion_unreachable', 'Chamelaion cannot be reached')], max_length=32, unique=True),
        ),
        migrations.AlterField(
            model_name='submission',
            name='title',
            field=models.CharField(blank=True, max_length=200, validators=[submissions.text.refuse_control_characters]),
        ),
        migrations.RunPython(recompute_fingerprints, migrations.RunPython.noop, elidable=True),
    ]
