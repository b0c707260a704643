from django.contrib import admin

from cryptosatx.models import Heartbeat


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("component", "seen_at", "detail")
    readonly_fields = ("component", "seen_at", "detail")

    def has_add_permission(self, request) -> bool:
        return False
