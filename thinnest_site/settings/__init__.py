"""Settings for the thinnest voice server.

Every value a user may change comes from the environment (see the settings table in README.md).
The defaults run on a laptop: SQLite, in-memory channel layer, media worker inside the web process,
Celery tasks run eagerly. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis.

base.py holds Django's own settings (apps, database, cache, Celery, security, logging);
product.py the product's (the start-call API, media workers, the speech pipeline, webhooks, the
knowledge base).
"""

from thinnest_site.settings.base import *  # noqa: F403
from thinnest_site.settings.product import *  # noqa: F403
