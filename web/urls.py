"""The dashboard's pages, mounted at the site root (`/` is the overview). Every page is for
signed-in users; the sign-in page is the only one open to anyone."""

from django.contrib.auth import views as auth_views
from django.urls import path

from web.views import alerts, overview, performance, scans, signal, signals, watchlists

app_name = "web"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", overview.overview_page, name="overview"),
    path("partials/ranking", overview.ranking_partial, name="ranking_partial"),
    path("signals/<int:signal_id>/", signal.signal_page, name="signal"),
    path(
        "signals/<int:signal_id>/candles.csv", signal.signal_candles_csv, name="signal_candles_csv"
    ),
    path("signals/", signals.signals_page, name="signals"),
    path("performance/", performance.performance_page, name="performance"),
    path("performance/csv/<slug:table>/", performance.performance_csv, name="performance-csv"),
    path("scans/", scans.scans_page, name="scans"),
    path("scans/<int:pk>/", scans.scan_page, name="scan"),
    path("watchlists/", watchlists.watchlists_page, name="watchlists"),
    path("watchlists/<int:pk>/", watchlists.watchlist_page, name="watchlist"),
    path("watchlists/<int:pk>/edit", watchlists.watchlist_edit, name="watchlist_edit"),
    path("watchlists/<int:pk>/delete", watchlists.watchlist_delete_view, name="watchlist_delete"),
    path("watchlists/<int:pk>/scan", watchlists.watchlist_scan, name="watchlist_scan"),
    path("alerts/", alerts.alerts_page, name="alerts"),
    path("alerts/<int:pk>/resend", alerts.alert_resend_view, name="alert_resend"),
]
