"""One unified ranking row per (coin, hour) instead of per (run, coin), and `RankedRun`.

Existing rows get their hour (as_of floored); where several runs of an hour had written a row for
the same coin, the one the ranking showed (the latest: highest id) is kept and the others go. The
kept row is what was displayed, not a recomputation; new rows follow docs/SCORING.md.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.db.models import Max
from django.db.models.functions import Trunc


def fill_hours_and_keep_one_row_per_hour(apps, schema_editor):
    UnifiedRanking = apps.get_model("scoring", "UnifiedRanking")
    UnifiedRanking.objects.update(hour=Trunc("as_of", "hour"))
    keep = (
        UnifiedRanking.objects.values("symbol", "hour")
        .annotate(keep=Max("id"))
        .values_list("keep", flat=True)
    )
    UnifiedRanking.objects.exclude(id__in=list(keep)).delete()
    # A stored entry was decided when it was stored (finish_scan recorded its signals then).
    UnifiedRanking.objects.update(signal_decided=True)


class Migration(migrations.Migration):
    dependencies = [
        ("scanners", "0003_market_data_no_redundant_market_index"),
        ("scoring", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="RankedRun",
            fields=[
                (
                    "run",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="ranked",
                        serialize=False,
                        to="scanners.scanrun",
                    ),
                ),
                ("hour", models.DateTimeField(db_index=True)),
                ("ranked_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="unifiedranking",
            name="unique_run_ranking",
        ),
        migrations.AddField(
            model_name="unifiedranking",
            name="hour",
            field=models.DateTimeField(
                null=True, help_text="The hour the row ranks the coin in (as_of, floored)."
            ),
        ),
        migrations.AddField(
            model_name="unifiedranking",
            name="signal_decided",
            field=models.BooleanField(
                default=False,
                help_text="The unified signal this row is due has been decided (recorded, or "
                "refused by the cooldown or for want of an entry price).",
            ),
        ),
        migrations.AddField(
            model_name="unifiedranking",
            name="updated_at",
            field=models.DateTimeField(auto_now=True, default=django.utils.timezone.now),
            preserve_default=False,
        ),
        migrations.RunPython(fill_hours_and_keep_one_row_per_hour, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="unifiedranking",
            name="hour",
            field=models.DateTimeField(
                help_text="The hour the row ranks the coin in (as_of, floored)."
            ),
        ),
        migrations.AlterField(
            model_name="unifiedranking",
            name="as_of",
            field=models.DateTimeField(help_text="The latest scan of the coin in that hour."),
        ),
        migrations.AlterField(
            model_name="unifiedranking",
            name="scan_run",
            field=models.ForeignKey(
                help_text="The run of the latest result the row was computed from.",
                on_delete=django.db.models.deletion.CASCADE,
                related_name="rankings",
                to="scanners.scanrun",
            ),
        ),
        migrations.AddConstraint(
            model_name="unifiedranking",
            constraint=models.UniqueConstraint(
                fields=("symbol", "hour"), name="unique_ranking_coin_hour"
            ),
        ),
    ]
