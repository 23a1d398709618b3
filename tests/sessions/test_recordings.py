"""Call recordings: stored through Django's storage, played to staff only, deleted with their
call or when their retention runs out. tests/voice/test_worker.py records a real call."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.utils import timezone

from sessions.models import CallSession
from sessions.recordings import call_recording_save, call_recordings_purge
from sessions.services import call_session_start
from tests.factories import make_staff_user
from voice.audio import TRACK_FRAME_SAMPLES
from voice.recording import CallRecorder

pytestmark = pytest.mark.django_db

VIEW_CALLS = "call_sessions.view_callsession"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def recorded_file(tmp_path, seconds: float = 1.0):
    recorder = CallRecorder(directory=str(tmp_path))
    for _ in range(int(seconds * 50)):
        recorder.add_caller(np.full(320, 1000, dtype=np.int16))
        recorder.add_agent(np.zeros(TRACK_FRAME_SAMPLES, dtype=np.int16).tobytes())
    return recorder.finish()


def test_the_recorder_mixes_both_sides_sample_for_sample(tmp_path):
    import av

    path = recorded_file(tmp_path, seconds=2.0)
    with av.open(str(path)) as container:
        duration = sum(f.samples for f in container.decode(audio=0)) / 48000  # opus decodes at 48k
    assert 1.9 <= duration <= 2.2
    assert path.stat().st_size < 2 * 24000 / 8 * 1.5  # about 24 kbit/s


def test_a_side_that_stalls_is_padded_so_the_other_is_not_held_back(tmp_path):
    recorder = CallRecorder(directory=str(tmp_path))
    for _ in range(100):  # two seconds of the agent, nothing from the caller
        recorder.add_agent(np.zeros(TRACK_FRAME_SAMPLES, dtype=np.int16).tobytes())
    assert recorder.duration_seconds >= 1.4
    recorder.discard()
    assert not recorder.path.exists()


def test_a_recording_with_no_audio_leaves_no_file(tmp_path):
    recorder = CallRecorder(directory=str(tmp_path))
    assert recorder.finish() is None
    assert not list(tmp_path.glob("*.ogg"))


def test_a_saved_recording_is_in_storage_and_its_temporary_file_is_gone(agent, tmp_path):
    session = call_session_start(agent=agent, api_key=None).session
    path = recorded_file(tmp_path)
    name = call_recording_save(session_id=session.public_id, path=path)
    assert not path.exists()
    assert default_storage.exists(name)
    assert CallSession.objects.get(pk=session.pk).recording.name == name


def test_deleting_a_call_deletes_its_recording(agent, tmp_path, django_capture_on_commit_callbacks):
    session = call_session_start(agent=agent, api_key=None).session
    name = call_recording_save(session_id=session.public_id, path=recorded_file(tmp_path))
    with django_capture_on_commit_callbacks(execute=True):
        CallSession.objects.filter(pk=session.pk).delete()
    assert not default_storage.exists(name)


def test_recordings_past_their_retention_are_purged_and_newer_ones_kept(
    agent, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.RECORDING_RETENTION_DAYS = 30
    old = call_session_start(agent=agent, api_key=None).session
    new = call_session_start(agent=agent, api_key=None).session
    old_name = call_recording_save(session_id=old.public_id, path=recorded_file(tmp_path))
    new_name = call_recording_save(session_id=new.public_id, path=recorded_file(tmp_path))
    CallSession.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))

    with django_capture_on_commit_callbacks(execute=True):
        assert call_recordings_purge() == 1
    assert not default_storage.exists(old_name) and default_storage.exists(new_name)
    assert not CallSession.objects.get(pk=old.pk).recording
    assert CallSession.objects.filter(pk=old.pk).exists()  # the call and transcript stay

    settings.RECORDING_RETENTION_DAYS = 0  # keep forever
    CallSession.objects.filter(pk=new.pk).update(created_at=timezone.now() - timedelta(days=999))
    assert call_recordings_purge() == 0


def test_staff_play_a_recording_and_others_cannot(client, agent, tmp_path):
    session = call_session_start(agent=agent, api_key=None).session
    call_recording_save(session_id=session.public_id, path=recorded_file(tmp_path))
    url = f"/dashboard/calls/{session.public_id}/recording.ogg"

    assert client.get(url).status_code == 302  # to the login page
    client.force_login(get_user_model().objects.create_user("visitor", password="pw-visitor-1"))
    assert client.get(url).status_code == 403
    client.force_login(make_staff_user("no-perms"))  # staff, without the call permission
    assert client.get(url).status_code == 403
    client.force_login(make_staff_user("s", perms=[VIEW_CALLS]))
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "audio/ogg"
    assert b"".join(response.streaming_content)[:4] == b"OggS"
    page = client.get(f"/dashboard/calls/{session.public_id}/")
    assert url.encode() in page.content


def test_a_call_without_a_recording_has_no_player_and_its_recording_url_is_404(client, agent):
    session = call_session_start(agent=agent, api_key=None).session
    client.force_login(make_staff_user("s", perms=[VIEW_CALLS]))
    assert client.get(f"/dashboard/calls/{session.public_id}/recording.ogg").status_code == 404
    assert b"recording.ogg" not in client.get(f"/dashboard/calls/{session.public_id}/").content


def test_the_recording_answers_range_requests_so_the_player_can_seek(client, agent, tmp_path):
    session = call_session_start(agent=agent, api_key=None).session
    call_recording_save(session_id=session.public_id, path=recorded_file(tmp_path))
    url = f"/dashboard/calls/{session.public_id}/recording.ogg"
    client.force_login(make_staff_user("s", perms=[VIEW_CALLS]))

    full = client.get(url)
    assert full.status_code == 200 and full["Accept-Ranges"] == "bytes"
    whole = b"".join(full.streaming_content)
    size = len(whole)
    assert size > 200

    head = client.get(url, HTTP_RANGE="bytes=0-3")
    assert head.status_code == 206 and head.content == b"OggS"
    assert head["Content-Range"] == f"bytes 0-3/{size}" and head["Content-Length"] == "4"

    rest = client.get(url, HTTP_RANGE="bytes=100-")  # what a browser sends when seeking
    assert rest.status_code == 206 and rest["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    assert b"".join(rest.streaming_content) == whole[100:]
    assert rest["Content-Length"] == str(size - 100)

    tail = client.get(url, HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == whole[-10:]

    beyond = client.get(url, HTTP_RANGE=f"bytes={size}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{size}"

    # Several ranges are not supported: the whole file, which RFC 9110 allows.
    multi = client.get(url, HTTP_RANGE="bytes=0-1,5-6")
    assert multi.status_code == 200 and b"".join(multi.streaming_content) == whole


def test_invalid_ranges_get_the_whole_recording_never_an_error(client, agent, tmp_path):
    session = call_session_start(agent=agent, api_key=None).session
    call_recording_save(session_id=session.public_id, path=recorded_file(tmp_path))
    url = f"/dashboard/calls/{session.public_id}/recording.ogg"
    client.force_login(make_staff_user("s", perms=[VIEW_CALLS]))
    whole = b"".join(client.get(url).streaming_content)

    # A 5,000-digit number (int() refuses it: a 500 before), numbers over 18 digits, and a last
    # byte before the first are invalid ranges: ignored, as RFC 9110 allows.
    for header in [
        "bytes=" + "9" * 5000 + "-",
        "bytes=0-" + "9" * 5000,
        "bytes=-" + "1" * 19,
        "bytes=5-3",
    ]:
        response = client.get(url, HTTP_RANGE=header)
        assert response.status_code == 200, header[:30]
        assert b"".join(response.streaming_content) == whole

    # 18 digits is still a number: past the end, so unsatisfiable.
    beyond = client.get(url, HTTP_RANGE="bytes=" + "9" * 18 + "-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(whole)}"
