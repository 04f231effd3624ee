"""Delivery failures counted apart from attempts, the "Chamelaion cannot be reached" problem, and no
control characters in titles and batch names. (The fingerprints are recomputed by 0014.)"""

from django.db import migrations, models

import submissions.core.text


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
            field=models.CharField(max_length=200, validators=[submissions.core.text.refuse_control_characters]),
        ),
        migrations.AlterField(
            model_name='problem',
            name='code',
            field=models.CharField(choices=[('api_key_rejected', 'API key rejected'), ('quota_used_up', 'Plan quota used up'), ('chamelaion_unreachable', 'Chamelaion cannot be reached')], max_length=32, unique=True),
        ),
        migrations.AlterField(
            model_name='submission',
            name='title',
            field=models.CharField(blank=True, max_length=200, validators=[submissions.core.text.refuse_control_characters]),
        ),
    ]
