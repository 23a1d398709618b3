from thinnest_site.dashboard import urlpatterns_build

app_name = "dashboard"
urlpatterns = urlpatterns_build()
