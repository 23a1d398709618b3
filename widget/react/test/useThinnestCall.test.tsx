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
      call.emit('transcript', { role: 'agent', text: 'Hel', final: false });
      call.emit('transcript', { role: 'agent', text: 'Hello! How can I help?', final: true });
      call.emit('transcript', { role: 'user', text: 'When do you', final: false });
    });
    expect(result.current.sessionId).toBe('session_1');
    expect(result.current.status).toBe('connected');
    expect(result.current.transcript).toEqual([
      { role: 'agent', text: 'Hello! How can I help?', final: true },
      { role: 'user', text: 'When do you', final: false },
    ]);

    act(() => result.current.setMuted(true));
    expect(result.current.muted).toBe(true);

    await act(() => result.current.hangUp());
    expect(call.disconnect).toHaveBeenCalledTimes(1);
    expect(result.current.duration).toBe(3.5);
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
