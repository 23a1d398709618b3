from __future__ import annotations

import time

import pytest
from django.test import override_settings

from sessions.models import CallSession
from sessions.services import CallTokenError, call_session_start, call_token_consume

pytestmark = pytest.mark.django_db


def test_a_token_is_redeemed_once_and_moves_the_session_to_connecting(agent, secret_key):
    started = call_session_start(agent=agent, api_key=secret_key[0])
    session = call_token_consume(session_id=started.session.public_id, token=started.token)
    assert session.status == CallSession.Status.CONNECTING
    assert session.token_used_at is not None

    with pytest.raises(CallTokenError) as exc:
        call_token_consume(session_id=started.session.public_id, token=started.token)
    assert exc.value.code == "token_used"


@override_settings(CALL_TOKEN_TTL_SECONDS=1)
def test_an_expired_token_is_refused_and_the_session_expires(agent, secret_key):
    started = call_session_start(agent=agent, api_key=secret_key[0])
    time.sleep(2.1)  # TimestampSigner has whole-second resolution
    with pytest.raises(CallTokenError) as exc:
        call_token_consume(session_id=started.session.public_id, token=started.token)
    assert exc.value.code == "token_expired"
    started.session.refresh_from_db()
    assert started.session.status == CallSession.Status.EXPIRED
    assert started.session.token_used_at is None


def test_a_token_for_another_session_is_refused(agent, secret_key):
    first = call_session_start(agent=agent, api_key=secret_key[0])
    second = call_session_start(agent=agent, api_key=secret_key[0])
    with pytest.raises(CallTokenError) as exc:
        call_token_consume(session_id=second.session.public_id, token=first.token)
    assert exc.value.code == "wrong_session"
    second.session.refresh_from_db()
    assert second.session.status == CallSession.Status.CREATED


@pytest.mark.parametrize("token", ["", "garbage", "eyJzIjoiYSJ9:1abc:def"])
def test_a_forged_token_is_refused(agent, secret_key, token):
    started = call_session_start(agent=agent, api_key=secret_key[0])
    with pytest.raises(CallTokenError) as exc:
        call_token_consume(session_id=started.session.public_id, token=token)
    assert exc.value.code == "invalid_token"


def test_a_token_tampered_to_name_another_session_is_refused(agent, secret_key):
    first = call_session_start(agent=agent, api_key=secret_key[0])
    second = call_session_start(agent=agent, api_key=secret_key[0])
    forged = first.token.replace(
        first.token.split(":")[0],
        second.token.split(":")[0],
    )
    with pytest.raises(CallTokenError) as exc:
        call_token_consume(session_id=second.session.public_id, token=forged)
    assert exc.value.code == "invalid_token"


def test_a_token_of_an_ended_session_is_refused(agent, secret_key):
    started = call_session_start(agent=agent, api_key=secret_key[0])
    CallSession.objects.filter(pk=started.session.pk).update(status=CallSession.Status.ENDED)
    with pytest.raises(CallTokenError) as exc:
        call_token_consume(session_id=started.session.public_id, token=started.token)
    assert exc.value.code == "token_used"
