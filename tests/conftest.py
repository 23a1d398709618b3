from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.core.cache import cache

from agents.models import ApiKey
from tests.factories import AgentFactory, make_api_key
from thinnest_site.launch import LocalRedis

SHOP_ORIGIN = "https://shop.example.com"

# Tests talk to the smallest packaged LLM; production defaults to a larger one (settings.LLM_MODEL).
# The environment variable reaches the product processes end-to-end tests start; the fixture
# covers this process, whose settings were read before this file.
TEST_LLM_MODEL = "smollm2"
os.environ.setdefault("LLM_MODEL", TEST_LLM_MODEL)


@pytest.fixture(autouse=True)
def _small_llm(settings):
    settings.LLM_MODEL = os.environ["LLM_MODEL"]


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters and cached origin lists must not leak between tests.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_channel_layer(request):
    # Each async test runs in an event loop of its own, and a channels_redis layer keeps asyncio
    # locks that bind to the loop that first waits on them: a layer shared with an earlier test
    # can hold a lock that the next loop may never take. So every test gets new layer instances.
    # Messages left in a channel (a call nobody took) must not reach the next test's worker,
    # hence the flush. End-to-end tests run the product in other processes, with layers of
    # their own.
    channel_layers.backends.clear()
    yield
    if not request.node.get_closest_marker("e2e"):
        async_to_sync(get_channel_layer().flush)()
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _celery_eager():
    # Tasks run in the test's own process unless a test starts a real worker
    # (tests/sessions/test_transcript_tasks.py). Celery caches its config, hence not settings.
    from thinnest_site.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """REDIS_URL when given (CI), else a private redis-server for this test session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with LocalRedis(tmp_path_factory.mktemp("redis")) as redis:
        yield redis.url


@pytest.fixture
def agent(db):
    return AgentFactory()


@pytest.fixture
def secret_key(agent):
    """(ApiKey, raw key) for a secret key that may start any agent."""
    return make_api_key(kind=ApiKey.Kind.SECRET)


@pytest.fixture
def public_key(agent):
    """(ApiKey, raw key) for a public key allowed for ``agent`` from SHOP_ORIGIN."""
    return make_api_key(kind=ApiKey.Kind.PUBLIC, agents=[agent], origins=[SHOP_ORIGIN])
