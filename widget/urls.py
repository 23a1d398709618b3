from django.urls import path
from django.views.generic import TemplateView

from widget.apis import DemoStartCallApi
from widget.views import DemoPageView

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("demo/", DemoPageView.as_view(), name="demo"),
    path("demo/api/start-call", DemoStartCallApi.as_view(), name="demo-start-call"),
    # The seed's browser code fetches '/api/start-call' from the page's own server; on the demo
    # that server is this one.
    path("api/start-call", DemoStartCallApi.as_view(), name="demo-start-call-seed-path"),
]
