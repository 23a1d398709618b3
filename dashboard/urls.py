"""Every staff page, under /dashboard/ (thinnest_site/urls.py). Apart from logging in and out,
each is staff only: its view is wrapped in ``staff_required`` (dashboard/access.py), and the
access tests in tests/dashboard/ open each page as an anonymous visitor and as a non-staff user."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from dashboard.access import staff_required
from dashboard.views import (
    agents,
    analytics,
    calls,
    chat,
    embed,
    keys,
    knowledge,
    overview,
    webhooks,
)

app_name = "dashboard"

login = auth_views.LoginView.as_view(
    template_name="registration/login.html", redirect_authenticated_user=True
)
logout = auth_views.LogoutView.as_view(next_page=reverse_lazy("dashboard:login"))
password_change = auth_views.PasswordChangeView.as_view(
    template_name="registration/password_change.html",
    success_url=reverse_lazy("dashboard:password_change_done"),
)
password_change_done = auth_views.PasswordChangeDoneView.as_view(
    template_name="registration/password_change_done.html"
)

urlpatterns = [
    path("login/", login, name="login"),
    path("logout/", logout, name="logout"),
    path("password/", staff_required(password_change), name="password_change"),
    path("password/done/", staff_required(password_change_done), name="password_change_done"),
    path("", overview.overview, name="home"),
    # Agents
    path("agents/", agents.agent_list, name="agent_list"),
    path("agents/new/", agents.agent_create_view, name="agent_create"),
    path("agents/<str:public_id>/", agents.agent_edit, name="agent_edit"),
    path(
        "agents/<str:public_id>/deactivate/", agents.agent_deactivate_view, name="agent_deactivate"
    ),
    path(
        "agents/<str:public_id>/reactivate/", agents.agent_reactivate_view, name="agent_reactivate"
    ),
    path("agents/<str:public_id>/duplicate/", agents.agent_duplicate_view, name="agent_duplicate"),
    path("agents/<str:public_id>/talk/", agents.agent_talk, name="agent_talk"),
    path("agents/<str:public_id>/chat/", chat.agent_chat, name="agent_chat"),
    path("voice-preview/", agents.voice_preview, name="voice_preview"),
    # An agent's webhooks and their delivery log
    path("agents/<str:public_id>/webhooks/", webhooks.webhook_list, name="webhook_list"),
    path(
        "agents/<str:public_id>/webhooks/<int:endpoint_id>/delete/",
        webhooks.webhook_delete,
        name="webhook_delete",
    ),
    path(
        "agents/<str:public_id>/webhooks/<int:endpoint_id>/test/",
        webhooks.webhook_test,
        name="webhook_test",
    ),
    path(
        "agents/<str:public_id>/webhooks/deliveries/<int:delivery_id>/",
        webhooks.webhook_delivery_detail,
        name="webhook_delivery",
    ),
    path(
        "agents/<str:public_id>/webhooks/deliveries/<int:delivery_id>/redeliver/",
        webhooks.webhook_redeliver,
        name="webhook_redeliver",
    ),
    # An agent's knowledge
    path("agents/<str:public_id>/knowledge/", knowledge.knowledge_list, name="knowledge_list"),
    path(
        "agents/<str:public_id>/knowledge/<str:document_id>/",
        knowledge.knowledge_document_detail,
        name="knowledge_document",
    ),
    path(
        "agents/<str:public_id>/knowledge/<str:document_id>/delete/",
        knowledge.knowledge_document_delete,
        name="knowledge_document_delete",
    ),
    # API keys and the embed snippets
    path("keys/", keys.api_key_list_view, name="api_key_list"),
    path("keys/new/", keys.api_key_create_view, name="api_key_create"),
    path("keys/<int:key_id>/", keys.api_key_edit_view, name="api_key_edit"),
    path("keys/<int:key_id>/revoke/", keys.api_key_revoke_view, name="api_key_revoke"),
    path("embed/", embed.embed, name="embed"),
    # Calls
    path("calls/", calls.call_list, name="call_list"),
    path("calls/export.csv", calls.call_list_csv, name="call_list_csv"),
    path("calls/<str:public_id>/", calls.call_detail, name="call_detail"),
    path("calls/<str:public_id>/export.json", calls.call_export, name="call_export"),
    path("calls/<str:public_id>/recording.ogg", calls.call_recording, name="call_recording"),
    path("analytics/", analytics.analytics, name="analytics"),
]
