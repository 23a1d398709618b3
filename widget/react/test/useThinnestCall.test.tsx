import { act, cleanup, renderHook } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { useThinnestCall } from '../src';
import { embedScripts, failLoading, FakeCall, fakeApi, finishLoading, newServerUrl, reset } from './fakeThinnest';

afterEach(() => {
  cleanup();
  reset();
});

describe('useThinnestCall', () => {
  it('loads the script on mount so that start() can create the call within the click', () => {
    const serverUrl = newServerUrl();
    renderHook(() => useThinnestCall({ agentId: 'agent_xyz', apiKey: 'pk_test', serverUrl }));
    expect(embedScripts()).toHaveLength(1);
  });

  it('follows a call from start to hang-up', async () => {
    const call = new FakeCall();
    const api = fakeApi({ createCall: vi.fn(() => Promise.resolve(call as never)) });
    window.ThinnestAI = api;
    const { result } = renderHook(() =>
      useThinnestCall({ agentId: 'agent_xyz', apiKey: 'pk_test', context: { plan: 'pro' } }),
    );
    expect(result.current.status).toBe('idle');

    await act(() => result.current.start());
    expect(api.createCall).toHaveBeenCalledWith({
      agentId: 'agent_xyz',
      apiKey: 'pk_test',
      context: { plan: 'pro' },
      serverUrl: undefined,
    });
    expect(call.connect).toHaveBeenCalledTimes(1);
    expect(result.current.status).toBe('connecting');

    act(() => {
      call.sessionId = 'session_1';
      call.emit('status', { status: 'connected' });
      call.emit('connected', { sessionId: 'session_1' });
      call.emit('transcript_partial', { role: 'agent', text: 'Hello!', utteranceId: 'agent-1' });
      call.emit('transcript_partial', { role: 'agent', text: 'Hello! How can I help?', utteranceId: 'agent-1' });
      call.emit('transcript', { role: 'agent', text: 'Hello! How can I help?', final: true, utteranceId: 'agent-1' });
      call.emit('transcript_partial', { role: 'user', text: 'When do you', utteranceId: 'user-2' });
    });
    expect(result.current.sessionId).toBe('session_1');
    expect(result.current.status).toBe('connected');
    expect(result.current.transcript).toEqual([
      { role: 'agent', text: 'Hello! How can I help?', final: true, utteranceId: 'agent-1' },
    ]);
    expect(result.current.partials).toEqual([{ role: 'user', text: 'When do you', utteranceId: 'user-2' }]);

    act(() => result.current.setMuted(true));
    expect(result.current.muted).toBe(true);

    await act(() => result.current.hangUp());
    expect(call.disconnect).toHaveBeenCalledTimes(1);
    expect(result.current.duration).toBe(3.5);
  });

  it('keeps one final line per utterance and the utterances in progress apart', async () => {
    const call = new FakeCall();
    window.ThinnestAI = fakeApi({ createCall: vi.fn(() => Promise.resolve(call as never)) });
    const { result } = renderHook(() => useThinnestCall({ agentId: 'agent_xyz', apiKey: 'pk_test' }));
    await act(() => result.current.start());

    act(() => {
      call.emit('transcript_partial', { role: 'user', text: 'What time', utteranceId: 'user-3' });
      call.emit('transcript_partial', { role: 'user', text: 'What time do you open', utteranceId: 'user-3' });
      // The agent's reply starts before the caller's words are final: two live lines.
      call.emit('transcript_partial', { role: 'agent', text: 'We open', utteranceId: 'agent-4' });
    });
    expect(result.current.transcript).toEqual([]);
    expect(result.current.partials).toEqual([
      { role: 'user', text: 'What time do you open', utteranceId: 'user-3' },
      { role: 'agent', text: 'We open', utteranceId: 'agent-4' },
    ]);

    act(() => {
      call.emit('transcript', { role: 'user', text: 'What time do you open?', final: true, utteranceId: 'user-3' });
      call.emit('transcript_partial', { role: 'agent', text: 'We open at nine.', utteranceId: 'agent-4' });
    });
    expect(result.current.transcript).toEqual([
      { role: 'user', text: 'What time do you open?', final: true, utteranceId: 'user-3' },
    ]);
    expect(result.current.partials).toEqual([{ role: 'agent', text: 'We open at nine.', utteranceId: 'agent-4' }]);

    act(() => {
      call.emit('transcript', { role: 'agent', text: 'We open at nine.', final: true, utteranceId: 'agent-4' });
      // A reply cut off before any of it was heard: its live line goes, and no final comes.
      call.emit('transcript_partial', { role: 'agent', text: 'Is there', utteranceId: 'agent-5' });
      call.emit('transcript_partial', { role: 'agent', text: '', utteranceId: 'agent-5' });
    });
    expect(result.current.transcript.map((l) => `${l.role}: ${l.text}`)).toEqual([
      'user: What time do you open?',
      'agent: We open at nine.',
    ]);
    expect(result.current.partials).toEqual([]);
  });

  it('starts each call with an empty transcript', async () => {
    const first = new FakeCall();
    const second = new FakeCall();
    const createCall = vi.fn().mockResolvedValueOnce(first).mockResolvedValueOnce(second);
    window.ThinnestAI = fakeApi({ createCall });
    const { result } = renderHook(() => useThinnestCall({ agentId: 'agent_xyz', apiKey: 'pk_test' }));
    await act(() => result.current.start());
    act(() => {
      first.emit('transcript', { role: 'agent', text: 'Hello!', final: true, utteranceId: 'agent-1' });
      first.emit('transcript_partial', { role: 'user', text: 'Bye', utteranceId: 'user-2' });
      first.emit('status', { status: 'ended' });
    });
    await act(() => result.current.start());
    expect(result.current.transcript).toEqual([]);
    expect(result.current.partials).toEqual([]);
    // The first call's late events do not reach the second's transcript.
    act(() => first.emit('transcript', { role: 'user', text: 'Bye', final: true, utteranceId: 'user-2' }));
    expect(result.current.transcript).toEqual([]);
  });

  it('reports a call that could not be created', async () => {
    window.ThinnestAI = fakeApi({
      createCall: vi.fn(() =>
        Promise.reject(Object.assign(new Error('needs agentId'), { code: 'invalid_config' })),
      ),
    });
    const { result } = renderHook(() => useThinnestCall({ apiKey: 'pk_test' }));
    await act(() => result.current.start());
    expect(result.current.status).toBe('error');
    expect(result.current.error).toEqual({ error: 'needs agentId', code: 'invalid_config' });
  });

  it('reports a script that could not be loaded', async () => {
    const serverUrl = newServerUrl();
    const { result } = renderHook(() => useThinnestCall({ agentId: 'agent_xyz', apiKey: 'pk_test', serverUrl }));
    let started!: Promise<void>;
    act(() => {
      started = result.current.start();
    });
    act(() => failLoading(embedScripts()[0]));
    await act(() => started);
    expect(result.current.status).toBe('error');
    expect(result.current.error?.code).toBe('script_load_failed');
  });

  it('hangs up when the component unmounts', async () => {
    const call = new FakeCall();
    window.ThinnestAI = fakeApi({ createCall: vi.fn(() => Promise.resolve(call as never)) });
    const { result, unmount } = renderHook(() => useThinnestCall({ agentId: 'agent_xyz', apiKey: 'pk_test' }));
    await act(() => result.current.start());
    unmount();
    expect(call.disconnect).toHaveBeenCalledTimes(1);
  });

  it('waits for the script when start() comes before it has loaded', async () => {
    const serverUrl = newServerUrl();
    const { result } = renderHook(() => useThinnestCall({ agentId: 'agent_xyz', apiKey: 'pk_test', serverUrl }));
    let started!: Promise<void>;
    act(() => {
      started = result.current.start();
    });
    const api = fakeApi();
    act(() => finishLoading(embedScripts()[0], api));
    await act(() => started);
    expect(api.createCall).toHaveBeenCalledWith(expect.objectContaining({ serverUrl }));
  });
});
