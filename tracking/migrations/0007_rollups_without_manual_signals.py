"""The rollup triggers again, now leaving manual signals out, and the rollups rebuilt without
them (tracking/rollups.py)."""

from django.db import migrations


def install(apps, schema_editor):
    from tracking import rollups

    rollups.triggers_install(schema_editor)
    rollups.rollups_rebuild()


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0006_signal_owner_tracker_permission"),
    ]

    # Backwards: the triggers stay as they are (0005's uninstall drops them with the table).
    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
