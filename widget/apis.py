from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import agent_get_active, api_key_get_demo_secret
from sessions.authentication import StartCallIpThrottle
from sessions.selectors import call_start_response, client_ip_get
from sessions.services import call_session_start
from thinnest_site.errors import ApplicationError, Forbidden
from widget.demo import demo_available, demo_request_is_cross_site


class DemoStartCallApi(APIView):
    """The demo's stand-in for a customer's backend (the seed's ``fetch('/api/start-call')``):
    starts a call with the demo agent and the demo secret key, which never reach the browser."""

    authentication_classes: list = []
    throttle_classes = [StartCallIpThrottle]

    @extend_schema(exclude=True)
    def post(self, request):
        if not demo_available(request._request):
            raise Http404
        if demo_request_is_cross_site(request):
            raise Forbidden(
                "The demo's start-call route only answers the demo page on this server.",
                code="origin_not_allowed",
            )
        agent = agent_get_active(public_id=settings.DEMO_AGENT_ID)
        api_key = api_key_get_demo_secret()
        if agent is None or api_key is None:
            raise ApplicationError(
                "The demo is not set up: run `python manage.py bootstrap_demo`.",
                code="demo_not_configured",
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        started = call_session_start(
            agent=agent,
            api_key=api_key,
            context={"page": "demo", "company": "the thinnest demo"},
            origin=request.headers.get("Origin", ""),
            client_ip=client_ip_get(request),
        )
        return Response(call_start_response(request, started), status=status.HTTP_201_CREATED)
