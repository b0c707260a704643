"""The market models left for market/ (market 0001): state only, their tables stay as they are."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('scanners', '0005_scanrun_scan_universe_permission'),
        ('market', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='candle',
                    name='market',
                ),
                migrations.RemoveField(
                    model_name='fundingrate',
                    name='market',
                ),
                migrations.RemoveField(
                    model_name='importrecord',
                    name='market',
                ),
                migrations.RemoveField(
                    model_name='openinterest',
                    name='market',
                ),
                migrations.DeleteModel(
                    name='ReplayClock',
                ),
                migrations.DeleteModel(
                    name='Candle',
                ),
                migrations.DeleteModel(
                    name='FundingRate',
                ),
                migrations.DeleteModel(
                    name='ImportRecord',
                ),
                migrations.DeleteModel(
                    name='Market',
                ),
                migrations.DeleteModel(
                    name='OpenInterest',
                ),
    
            ],
            database_operations=[],
        ),
    ]
