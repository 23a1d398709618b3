"""Who may open a dashboard page: staff only, with the permission the page needs. Every view in
dashboard/views/ is wrapped in ``staff_required``; dashboard/urls.py wraps Django's own
password views in it.

Anonymous visitors are sent to the login page; a logged-in user who is not staff gets a 403 (the
dashboard shows keys, prompts and every call's transcript). Staff also need the Django model
permission of what a page shows or changes, as in the admin (superusers have them all), so one
account can be allowed the call history and not the minting of secret keys."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from inspect import iscoroutinefunction

from asgiref.sync import sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import reverse_lazy

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# The call pages, exports and analytics, and the call figures of the overview.
VIEW_CALLS = "call_sessions.view_callsession"
Perms = str | tuple[str, ...]


def staff_required(
    view: Callable | None = None, *, perm: Perms = (), post_perm: Perms | None = None
) -> Callable:
    """Staff only, and with ``perm`` (one "app_label.codename" or a tuple, all needed); a POST
    (any unsafe method) needs ``post_perm`` instead when given: e.g. viewing an agent needs
    view_agent, saving it change_agent.

    Use bare (``@staff_required``: any staff user) or with arguments
    (``@staff_required(perm="agents.view_apikey")``)."""

    def check(user, method: str) -> None:
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("The dashboard is for staff users.")
        needed = perm if method in SAFE_METHODS or post_perm is None else post_perm
        needed = (needed,) if isinstance(needed, str) else needed
        if not user.has_perms(needed):
            missing = ", ".join(p for p in needed if not user.has_perm(p))
            raise PermissionDenied(
                f"Your account lacks the permission this needs ({missing}). "
                "An administrator can grant it in the admin, under Users."
            )

    def login_redirect(request):
        return redirect_to_login(request.get_full_path(), reverse_lazy("dashboard:login"))

    def decorate(view: Callable) -> Callable:
        if iscoroutinefunction(view):
            # An async view (one that waits on the model, dashboard/views/chat.py): the checks
            # read the database, so they run in Django's sync thread.
            @wraps(view)
            async def async_wrapper(request, *args, **kwargs):
                user = await request.auser()
                if not user.is_authenticated:
                    return login_redirect(request)
                await sync_to_async(check)(user, request.method)
                return await view(request, *args, **kwargs)

            return async_wrapper

        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return login_redirect(request)
            check(request.user, request.method)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
