"""Serialising work on one key across processes with a row lock that exists before the work."""

from __future__ import annotations

from typing import Any

from django.db.models import Model


def lock_row(model: type[Model], **key: Any) -> None:
    """Lock the row of `model` with `key` until the current transaction ends, creating it first
    when missing (a concurrent creator's row is taken as is). One statement once the row exists,
    which is nearly every call; three the first time. Call inside `transaction.atomic()`."""
    if model.objects.select_for_update().filter(**key).first() is None:
        model.objects.bulk_create([model(**key)], ignore_conflicts=True)
        model.objects.select_for_update().get(**key)
