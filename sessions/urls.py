from django.urls import path

from sessions.apis import CallStartApi

urlpatterns = [
    path("voice/start", CallStartApi.as_view(), name="voice-start"),
]
