"""The market models, moved here from scanners/ with their tables as they are.

Only Django's state changes: the tables keep their `scanners_` names (each model's `db_table`),
so an existing database migrates without copying a row. Content types move with the models, so
permissions granted on them stay granted.
"""

import django.db.models.deletion
from django.db import migrations, models


MOVED_MODELS = ["market", "candle", "fundingrate", "openinterest", "importrecord", "replayclock"]


def move_content_types(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="scanners", model__in=MOVED_MODELS).update(
        app_label="market"
    )


def move_content_types_back(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="market", model__in=MOVED_MODELS).update(
        app_label="scanners"
    )


class Migration(migrations.Migration):

    initial = True

    # The tables exist already (scanners 0001-0005 made them): only the state moves here.
    dependencies = [
        ("scanners", "0005_scanrun_scan_universe_permission"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ReplayClock',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('market_time', models.DateTimeField()),
                        ('start', models.DateTimeField()),
                        ('end', models.DateTimeField(help_text='Close time of the last stored candle; the clock stops here.')),
                        ('step', models.DurationField(help_text='Market time added per tick.')),
                        ('ticks', models.PositiveIntegerField(default=0)),
                        ('finished', models.BooleanField(default=False)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        'db_table': 'scanners_replayclock',
                    },
                ),
                migrations.CreateModel(
                    name='Market',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('exchange', models.CharField(max_length=32)),
                        ('symbol', models.CharField(max_length=64)),
                        ('base', models.CharField(max_length=32)),
                        ('quote', models.CharField(max_length=16)),
                        ('market_type', models.CharField(choices=[('spot', 'Spot'), ('futures', 'USDT-M perpetual')], max_length=8)),
                        ('listed_at', models.DateTimeField(blank=True, null=True)),
                        ('listed_at_source', models.CharField(blank=True, choices=[('exchange', 'Exchange metadata'), ('first_candle', 'First stored candle')], default='', max_length=16)),
                        ('active', models.BooleanField(default=True)),
                    ],
                    options={
                        'db_table': 'scanners_market',
                        'ordering': ['exchange', 'market_type', 'symbol'],
                        'constraints': [models.UniqueConstraint(fields=('exchange', 'market_type', 'symbol'), name='unique_market')],
                    },
                ),
                migrations.CreateModel(
                    name='ImportRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('path', models.CharField(max_length=1024)),
                        ('sha256', models.CharField(max_length=64)),
                        ('kind', models.CharField(choices=[('candles', 'Candles'), ('funding', 'Funding rates')], max_length=8)),
                        ('timeframe', models.CharField(blank=True, default='', max_length=4)),
                        ('series', models.CharField(blank=True, default='', max_length=8)),
                        ('rows', models.PositiveIntegerField()),
                        ('inserted', models.PositiveIntegerField()),
                        ('first_time', models.DateTimeField(null=True)),
                        ('last_time', models.DateTimeField(null=True)),
                        ('gaps', models.PositiveIntegerField(default=0, help_text='Missing intervals inside the file.')),
                        ('imported_at', models.DateTimeField(auto_now_add=True)),
                        ('market', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='imports', to='market.market')),
                    ],
                    options={
                        'db_table': 'scanners_importrecord',
                        'ordering': ['-imported_at'],
                    },
                ),
                migrations.CreateModel(
                    name='FundingRate',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('funding_time', models.DateTimeField()),
                        ('rate', models.FloatField()),
                        ('market', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='funding_rates', to='market.market')),
                    ],
                    options={
                        'db_table': 'scanners_fundingrate',
                        'constraints': [models.UniqueConstraint(fields=('market', 'funding_time'), name='unique_funding')],
                    },
                ),
                migrations.CreateModel(
                    name='Candle',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('timeframe', models.CharField(max_length=4)),
                        ('series', models.CharField(choices=[('trades', 'Traded price'), ('mark', 'Mark price')], default='trades', max_length=8)),
                        ('open_time', models.DateTimeField()),
                        ('open', models.FloatField()),
                        ('high', models.FloatField()),
                        ('low', models.FloatField()),
                        ('close', models.FloatField()),
                        ('volume', models.FloatField(help_text='Base-asset volume.')),
                        ('taker_buy_volume', models.FloatField(blank=True, help_text='Base-asset volume bought by takers, when the source has it.', null=True)),
                        ('market', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='candles', to='market.market')),
                    ],
                    options={
                        'db_table': 'scanners_candle',
                        'constraints': [models.UniqueConstraint(fields=('market', 'timeframe', 'series', 'open_time'), name='unique_candle'), models.CheckConstraint(condition=models.Q(('high__gte', models.F('low'))), name='candle_high_not_below_low')],
                    },
                ),
                migrations.CreateModel(
                    name='OpenInterest',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('timestamp', models.DateTimeField()),
                        ('open_interest', models.FloatField()),
                        ('open_interest_value', models.FloatField(blank=True, null=True)),
                        ('market', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='open_interest', to='market.market')),
                    ],
                    options={
                        'verbose_name_plural': 'open interest',
                        'db_table': 'scanners_openinterest',
                        'constraints': [models.UniqueConstraint(fields=('market', 'timestamp'), name='unique_open_interest')],
                    },
                ),
    
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
