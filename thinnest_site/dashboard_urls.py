from django.urls import path

from agents import webhook_views
from thinnest_site.dashboard import urlpatterns_build

app_name = "dashboard"
urlpatterns = [
    *urlpatterns_build(),
    # An agent's webhooks and their delivery log (every view is staff_required).
    path("agents/<str:public_id>/webhooks/", webhook_views.webhook_list, name="webhook_list"),
    path(
        "agents/<str:public_id>/webhooks/<int:endpoint_id>/delete/",
        webhook_views.webhook_delete,
        name="webhook_delete",
    ),
    path(
        "agents/<str:public_id>/webhooks/<int:endpoint_id>/test/",
        webhook_views.webhook_test,
        name="webhook_test",
    ),
    path(
        "agents/<str:public_id>/webhooks/deliveries/<int:delivery_id>/",
        webhook_views.webhook_delivery_detail,
        name="webhook_delivery",
    ),
    path(
        "agents/<str:public_id>/webhooks/deliveries/<int:delivery_id>/redeliver/",
        webhook_views.webhook_redeliver,
        name="webhook_redeliver",
    ),
]
