"""What every dashboard page shares: staff-only access, the permission each page needs, and its
URL map.

Anonymous visitors are sent to the login page; a logged-in user who is not staff gets a 403 (the
dashboard shows keys, prompts and every call's transcript). Staff also need the Django model
permission of what a page shows or changes, as in the admin (superusers have them all), so one
account can be allowed the call history and not the minting of secret keys."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import path, reverse_lazy

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
Perms = str | tuple[str, ...]


def staff_required(
    view: Callable | None = None, *, perm: Perms = (), post_perm: Perms | None = None
) -> Callable:
    """Staff only, and with ``perm`` (one "app_label.codename" or a tuple, all needed); a POST
    (any unsafe method) needs ``post_perm`` instead when given: e.g. viewing an agent needs
    view_agent, saving it change_agent.

    Use bare (``@staff_required``: any staff user) or with arguments
    (``@staff_required(perm="agents.view_apikey")``)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse_lazy("dashboard:login"))
            if not (user.is_active and user.is_staff):
                raise PermissionDenied("The dashboard is for staff users.")
            needed = perm if request.method in SAFE_METHODS or post_perm is None else post_perm
            needed = (needed,) if isinstance(needed, str) else needed
            if not user.has_perms(needed):
                missing = ", ".join(p for p in needed if not user.has_perm(p))
                raise PermissionDenied(
                    f"Your account lacks the permission this needs ({missing}). "
                    "An administrator can grant it in the admin, under Users."
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def urlpatterns_build():
    from agents import views as agent_views
    from sessions import views as call_views

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
    return [
        path("login/", login, name="login"),
        path("logout/", logout, name="logout"),
        path("password/", staff_required(password_change), name="password_change"),
        path("password/done/", staff_required(password_change_done), name="password_change_done"),
        path("", call_views.overview, name="home"),
        path("agents/", agent_views.agent_list, name="agent_list"),
        path("agents/new/", agent_views.agent_create_view, name="agent_create"),
        path("agents/<str:public_id>/", agent_views.agent_edit, name="agent_edit"),
        path(
            "agents/<str:public_id>/deactivate/",
            agent_views.agent_deactivate_view,
            name="agent_deactivate",
        ),
        path(
            "agents/<str:public_id>/reactivate/",
            agent_views.agent_reactivate_view,
            name="agent_reactivate",
        ),
        path(
            "agents/<str:public_id>/duplicate/",
            agent_views.agent_duplicate_view,
            name="agent_duplicate",
        ),
        path("agents/<str:public_id>/talk/", agent_views.agent_talk, name="agent_talk"),
        path("voice-preview/", agent_views.voice_preview, name="voice_preview"),
        path("keys/", agent_views.api_key_list, name="api_key_list"),
        path("keys/new/", agent_views.api_key_create_view, name="api_key_create"),
        path("keys/<int:key_id>/", agent_views.api_key_edit_view, name="api_key_edit"),
        path("keys/<int:key_id>/revoke/", agent_views.api_key_revoke_view, name="api_key_revoke"),
        path("embed/", agent_views.embed, name="embed"),
        path("calls/", call_views.call_list, name="call_list"),
        path("calls/export.csv", call_views.call_list_csv, name="call_list_csv"),
        path("calls/<str:public_id>/", call_views.call_detail, name="call_detail"),
        path("calls/<str:public_id>/export.json", call_views.call_export, name="call_export"),
        path(
            "calls/<str:public_id>/recording.ogg", call_views.call_recording, name="call_recording"
        ),
        path("analytics/", call_views.analytics, name="analytics"),
    ]
