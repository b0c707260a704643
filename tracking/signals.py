"""Django signals of the tracking app.

`signal_recorded` is sent with `instance=<tracking.models.Signal>` (as post_save does: Django's
dispatcher passes its own `signal` keyword to every receiver, so the keyword cannot be `signal`)
inside the transaction that creates the signal, so a receiver's writes (outcome-check rows, an
alert in the outbox) commit or roll back with it. A receiver that must act only after commit uses
`transaction.on_commit`.
"""

from __future__ import annotations

from django.dispatch import Signal as DjangoSignal

signal_recorded = DjangoSignal()
