from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        from dashboard.access_live import connect_signals
        from dashboard.links import ReversedLinks
        from errorsink.alerts.links import links_register

        connect_signals()
        links_register(ReversedLinks())
