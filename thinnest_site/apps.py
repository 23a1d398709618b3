from django.contrib.staticfiles.apps import StaticFilesConfig as BaseStaticFilesConfig


class StaticFilesConfig(BaseStaticFilesConfig):
    # static/vendor/node_modules holds npm's install; only the files STATICFILES_DIRS names from
    # it are served.
    ignore_patterns = [*BaseStaticFilesConfig.ignore_patterns, "node_modules", "package*.json"]
