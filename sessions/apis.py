from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from sessions.authentication import (
    ApiKeyAuthentication,
    BoundedJSONParser,
    StartCallIpThrottle,
    StartCallKeyThrottle,
)
from sessions.selectors import call_start_response, client_ip_get
from sessions.services import call_session_start, call_start_agent_resolve

_ERROR_SCHEMA = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorDetail", {"code": serializers.CharField(), "message": serializers.CharField()}
        )
    },
)


class CallStartApi(APIView):
    """``POST /voice/start``: create a call session for an agent and return its WebSocket."""

    authentication_classes = [ApiKeyAuthentication]
    parser_classes = [BoundedJSONParser]
    # Per client IP, for every request (a bad key too): checked before the key is looked at.
    # The key's own budget is charged in post(), only once origin and agent have passed, so
    # requests a key's rules refuse cannot use up the budget of the site that owns it.
    throttle_classes = [StartCallIpThrottle]

    class InputSerializer(serializers.Serializer):
        agent_id = serializers.CharField(max_length=64)
        context = serializers.JSONField(required=False, default=dict, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        session_id = serializers.CharField()
        token = serializers.CharField()
        websocket_url = serializers.CharField()
        ice_servers = serializers.ListField(child=serializers.DictField(), required=False)

    def perform_authentication(self, request) -> None:
        # Authenticate lazily (on first use of request.auth, in the key throttle) so that the
        # per-IP throttle counts requests with bad keys as well.
        pass

    @extend_schema(
        operation_id="voice_start",
        summary="Start a web call",
        description="Authenticate with a secret key from your backend, or with a public key from "
        "a page on one of the key's allowed origins. The token is valid once, for "
        "CALL_TOKEN_TTL_SECONDS.",
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(_ERROR_SCHEMA, description="invalid_request"),
            401: OpenApiResponse(_ERROR_SCHEMA, description="invalid_api_key"),
            403: OpenApiResponse(
                _ERROR_SCHEMA, description="origin_not_allowed, agent_not_allowed"
            ),
            404: OpenApiResponse(_ERROR_SCHEMA, description="agent_not_found"),
            413: OpenApiResponse(_ERROR_SCHEMA, description="request_too_large"),
            415: OpenApiResponse(_ERROR_SCHEMA, description="unsupported_media_type"),
            429: OpenApiResponse(
                _ERROR_SCHEMA,
                description="rate_limited (see Retry-After), concurrent_call_limit",
            ),
        },
        examples=[
            OpenApiExample(
                "Start a call",
                request_only=True,
                value={
                    "agent_id": "agent_xyz",
                    "context": {"user_name": "Jane Doe", "page": "pricing"},
                },
            )
        ],
    )
    def post(self, request):
        api_key = request.auth  # authenticates now, after the per-IP throttle: a bad key is a 401
        if not request.content_type:
            raise exceptions.UnsupportedMediaType("", detail="Send the body as application/json.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        origin = request.headers.get("Origin", "")
        agent = call_start_agent_resolve(
            api_key=api_key, agent_id=serializer.validated_data["agent_id"], origin=origin
        )
        key_throttle = StartCallKeyThrottle()
        if not key_throttle.allow_request(request, self):
            self.throttled(request, key_throttle.wait())
        started = call_session_start(
            agent=agent,
            api_key=api_key,
            context=serializer.validated_data["context"],
            origin=origin,
            client_ip=client_ip_get(request),
        )
        body = call_start_response(request, started)
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)
