from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.views.generic import TemplateView


class DemoPageView(TemplateView):
    template_name = "widget/demo.html"

    def get(self, request, *args, **kwargs):
        if not settings.DEMO_ENABLED:
            raise Http404
        return super().get(request, *args, **kwargs)
