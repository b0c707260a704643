"""The `scanresult_latest` index ends in `id`: the ranking's "newest result of a coin and
scanner" (`ORDER BY as_of DESC, id DESC LIMIT 1`) becomes one index probe instead of a top-N sort
of the key's rows."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scanners", "0007_scanresult_as_of_index"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="scanresult", name="scanresult_latest"),
        migrations.AddIndex(
            model_name="scanresult",
            index=models.Index(
                fields=["symbol", "scanner", "as_of", "id"], name="scanresult_latest"
            ),
        ),
    ]
