
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("scanners", "0006_market_models_moved_to_market"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="scanresult",
            index=models.Index(fields=["as_of", "symbol"], name="scanresult_as_of"),
        ),
    ]
