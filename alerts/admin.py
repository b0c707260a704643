"""Admin for the alert outbox: the history of what was (or was not) sent to which chat, filters by
tier, state, chat and kind, and a resend action for failed and unconfirmed alerts. Rows are never
edited by hand: their text is what was sent."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from alerts.models import RESENDABLE_STATES, Alert
from alerts.services import alert_resend
from scanners.admin import ReadOnlyAdmin


class ChatFilter(admin.SimpleListFilter):
    """The chats alerts went to (few: one per configured chat, plus the console)."""

    title = "chat"
    parameter_name = "chat"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        from alerts.models import AlertChat

        return [
            (chat.chat_id or "-", chat.chat_id or "console")
            for chat in AlertChat.objects.order_by("channel", "chat_id")
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(chat_id="" if value == "-" else value)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tier",
        "kind",
        "symbol",
        "signal_link",
        "channel",
        "chat_id",
        "state",
        "attempts",
        "sent_at",
        "digest_link",
        "last_error",
    ]
    list_filter = ["tier", "state", ChatFilter, "kind", "channel"]
    list_select_related = ["signal"]
    date_hierarchy = "created_at"
    search_fields = ["signal__symbol"]
    search_help_text = "Search a symbol (BTC/USDT)."
    ordering = ["-created_at", "-id"]
    actions = ["resend"]
    fields = [
        "kind",
        "tier",
        "signal",
        "channel",
        "chat_id",
        "state",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "telegram_message_id",
        "last_error",
        "digest",
        "disable_notification",
        "created_at",
        "text",
    ]
    readonly_fields = fields

    @admin.display(description="symbol", ordering="signal__symbol")
    def symbol(self, alert: Alert) -> str:
        return alert.signal.symbol if alert.signal_id else "–"

    @admin.display(description="signal", ordering="signal")
    def signal_link(self, alert: Alert) -> str:
        if alert.signal_id is None:
            return "–"
        url = reverse("admin:tracking_signal_change", args=[alert.signal_id])
        return format_html('<a href="{}">#{}</a>', url, alert.signal_id)

    @admin.display(description="digest", ordering="digest")
    def digest_link(self, alert: Alert) -> str:
        if alert.digest_id is None:
            return "–"
        url = reverse("admin:alerts_alert_change", args=[alert.digest_id])
        return format_html('<a href="{}">#{}</a>', url, alert.digest_id)

    @admin.action(description="Send the selected failed/unconfirmed alerts again")
    def resend(self, request: HttpRequest, queryset: QuerySet) -> None:
        resent = sum(alert_resend(alert) for alert in queryset.filter(state__in=RESENDABLE_STATES))
        skipped = queryset.count() - resent
        if resent:
            self.message_user(request, f"{resent} alert(s) queued to be sent again.")
        if skipped:
            self.message_user(
                request,
                f"{skipped} alert(s) skipped: only failed or unconfirmed alerts can be resent.",
                level=messages.WARNING,
            )
