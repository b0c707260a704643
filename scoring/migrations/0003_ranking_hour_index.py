
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("scoring", "0002_one_ranking_per_coin_hour"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="unifiedranking",
            index=models.Index(fields=["hour"], name="ranking_hour"),
        ),
    ]
