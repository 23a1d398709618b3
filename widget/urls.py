from django.urls import path, re_path
from django.views.generic import TemplateView

from widget.apis import DemoStartCallApi
from widget.views import DemoPageView, embed_script

urlpatterns = [
    path("widget.js", embed_script, {"name": "widget.js"}, name="widget-js"),
    path("sdk.js", embed_script, {"name": "sdk.js"}, name="sdk-js"),
    re_path(
        r"^(?P<version>v[0-9.]+)/(?P<name>widget\.js|sdk\.js)$",
        embed_script,
        name="embed-script-versioned",
    ),
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("demo/", DemoPageView.as_view(), name="demo"),
    path("demo/api/start-call", DemoStartCallApi.as_view(), name="demo-start-call"),
    # The seed's browser code fetches '/api/start-call' from the page's own server; on the demo
    # that server is this one.
    path("api/start-call", DemoStartCallApi.as_view(), name="demo-start-call-seed-path"),
]
