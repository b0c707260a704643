"""A partial index of the undecided entering rows by hour: the final step's "undecided entries
of the last day" reads those few rows instead of filtering the day's every row."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0003_ranking_hour_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="unifiedranking",
            index=models.Index(
                condition=models.Q(enters_signal_tier=True, signal_decided=False),
                fields=["hour"],
                name="ranking_undecided_entries",
            ),
        ),
    ]
