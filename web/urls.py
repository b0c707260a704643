"""The dashboard's pages, mounted at the site root (`/` is the overview). Every page is for
signed-in users; the sign-in page is the only one open to anyone."""

from django.contrib.auth import views as auth_views
from django.urls import path

from web.views import overview, performance, signal, signals

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
]
