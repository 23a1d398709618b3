from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """Every page a staff user sees; no models of its own (it shows and changes the other apps'
    through their selectors and services)."""

    name = "dashboard"
