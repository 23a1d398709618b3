import { act, cleanup, render, waitFor } from '@testing-library/react';
import { createRef, StrictMode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { ThinnestVoiceWidget, type ThinnestVoiceWidgetHandle } from '../src';
import {
  embedScripts,
  failLoading,
  fakeApi,
  FakeWidget,
  finishLoading,
  newServerUrl,
  reset,
} from './fakeThinnest';

afterEach(() => {
  cleanup();
  reset();
});

const REQUIRED = { agentId: 'agent_xyz', apiKey: 'pk_test' };

async function loaded(count = 1): Promise<FakeWidget[]> {
  await waitFor(() => expect(FakeWidget.live()).toHaveLength(count));
  return FakeWidget.live();
}

describe('ThinnestVoiceWidget', () => {
  it('loads widget.js from the server once for two widgets and makes one widget each', async () => {
    const serverUrl = newServerUrl();
    render(
      <>
        <ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} />
        <ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} position="bottom-left" />
      </>,
    );
    const scripts = embedScripts();
    expect(scripts).toHaveLength(1);
    expect(scripts[0].getAttribute('src')).toBe(serverUrl.replace(/\/$/, '') + '/widget.js');
    expect(scripts[0].async).toBe(true);
    expect(FakeWidget.instances).toHaveLength(0); // nothing before the script has run

    act(() => finishLoading(scripts[0]));
    const widgets = await loaded(2);
    expect(widgets.map((w) => w.options.position)).toEqual([undefined, 'bottom-left']);
  });

  it('loads the script once across mounts that come later', async () => {
    const serverUrl = newServerUrl();
    const first = render(<ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} />);
    act(() => finishLoading(embedScripts()[0]));
    await loaded(1);
    first.unmount();
    render(<ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} />);
    await loaded(1);
    expect(embedScripts()).toHaveLength(1);
    expect(FakeWidget.instances).toHaveLength(2);
  });

  it('passes every option to the Widget constructor', async () => {
    const serverUrl = newServerUrl();
    render(
      <ThinnestVoiceWidget
        agentId="agent_abc"
        apiKey="pk_live_123"
        position="bottom-left"
        theme="dark"
        greeting="Talk to us"
        primaryColor="#ff0000"
        autoOpen
        context={{ plan: 'pro', userId: 7 }}
        serverUrl={serverUrl}
        fallbackPhone="+1 555 0100"
        requestMicrophoneEarly
      />,
    );
    act(() => finishLoading(embedScripts()[0]));
    const [widget] = await loaded();
    expect(widget.options).toMatchObject({
      agentId: 'agent_abc',
      apiKey: 'pk_live_123',
      position: 'bottom-left',
      theme: 'dark',
      greeting: 'Talk to us',
      primaryColor: '#ff0000',
      autoOpen: true,
      context: { plan: 'pro', userId: 7 },
      serverUrl,
      fallbackPhone: '+1 555 0100',
      requestMicrophoneEarly: true,
    });
    for (const name of ['onCallStart', 'onCallEnd', 'onError', 'onTranscript', 'onTranscriptPartial'] as const) {
      expect(typeof widget.options[name]).toBe('function');
    }
  });

  it('calls the latest callbacks, and a new callback does not make a new widget', async () => {
    const serverUrl = newServerUrl();
    const first = {
      onCallStart: vi.fn(),
      onCallEnd: vi.fn(),
      onError: vi.fn(),
      onTranscript: vi.fn(),
      onTranscriptPartial: vi.fn(),
    };
    const view = render(<ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} {...first} />);
    act(() => finishLoading(embedScripts()[0]));
    const [widget] = await loaded();

    widget.options.onCallStart!('session_1');
    widget.options.onTranscriptPartial!({ role: 'agent', text: 'Hel', utteranceId: 'agent-1' });
    widget.options.onTranscript!({ role: 'agent', text: 'Hello!', final: true, utteranceId: 'agent-1' });
    widget.options.onError!({ error: 'boom', code: 'network' });
    widget.options.onCallEnd!('session_1', 12.5);
    expect(first.onCallStart).toHaveBeenCalledWith('session_1');
    expect(first.onTranscriptPartial).toHaveBeenCalledWith({ role: 'agent', text: 'Hel', utteranceId: 'agent-1' });
    expect(first.onTranscript).toHaveBeenCalledWith({
      role: 'agent',
      text: 'Hello!',
      final: true,
      utteranceId: 'agent-1',
    });
    expect(first.onError).toHaveBeenCalledWith({ error: 'boom', code: 'network' });
    expect(first.onCallEnd).toHaveBeenCalledWith('session_1', 12.5);

    const onCallEnd = vi.fn();
    view.rerender(
      <ThinnestVoiceWidget
        {...REQUIRED}
        serverUrl={serverUrl}
        onCallEnd={onCallEnd}
        context={{}} // a new (equal) object on each render
      />,
    );
    widget.options.onCallEnd!('session_2', 3);
    widget.options.onCallStart!('session_3'); // no handler any more: nothing happens
    expect(onCallEnd).toHaveBeenCalledWith('session_2', 3);
    expect(first.onCallEnd).toHaveBeenCalledTimes(1);
    expect(first.onCallStart).toHaveBeenCalledTimes(1);
    expect(FakeWidget.instances).toHaveLength(1);
    expect(widget.destroyed).toBe(false);
  });

  it('destroys its widget on unmount', async () => {
    const serverUrl = newServerUrl();
    const view = render(<ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} />);
    act(() => finishLoading(embedScripts()[0]));
    const [widget] = await loaded();
    view.unmount();
    expect(widget.destroyed).toBe(true);
  });

  it('makes no widget when unmounted before the script has loaded', async () => {
    const serverUrl = newServerUrl();
    const onError = vi.fn();
    const view = render(<ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} onError={onError} />);
    view.unmount();
    act(() => finishLoading(embedScripts()[0]));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(FakeWidget.instances).toHaveLength(0);
    expect(onError).not.toHaveBeenCalled();
  });

  it('replaces its widget when an option changes', async () => {
    const serverUrl = newServerUrl();
    const view = render(<ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} theme="light" />);
    act(() => finishLoading(embedScripts()[0]));
    const [light] = await loaded();
    view.rerender(<ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} theme="dark" />);
    await waitFor(() => expect(FakeWidget.instances).toHaveLength(2));
    expect(light.destroyed).toBe(true);
    expect(FakeWidget.live().map((w) => w.options.theme)).toEqual(['dark']);

    view.rerender(
      <ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} theme="dark" context={{ plan: 'pro' }} />,
    );
    await waitFor(() => expect(FakeWidget.instances).toHaveLength(3));
    expect(FakeWidget.live().map((w) => w.options.context)).toEqual([{ plan: 'pro' }]);
  });

  it('leaves one live widget under StrictMode', async () => {
    const serverUrl = newServerUrl();
    render(
      <StrictMode>
        <ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} />
      </StrictMode>,
    );
    expect(embedScripts()).toHaveLength(1);
    act(() => finishLoading(embedScripts()[0]));
    await loaded(1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(FakeWidget.live()).toHaveLength(1);
  });

  it('calls onError when the script cannot be loaded, and tries again on the next mount', async () => {
    const serverUrl = newServerUrl();
    const onError = vi.fn();
    const view = render(<ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} onError={onError} />);
    act(() => failLoading(embedScripts()[0]));
    await waitFor(() => expect(onError).toHaveBeenCalledTimes(1));
    const [error] = onError.mock.calls[0];
    expect(error.code).toBe('script_load_failed');
    expect(error.error).toContain(serverUrl.replace(/\/$/, '') + '/widget.js');
    expect(embedScripts()).toHaveLength(0);
    expect(FakeWidget.instances).toHaveLength(0);

    view.unmount();
    render(<ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} onError={onError} />);
    expect(embedScripts()).toHaveLength(1);
    act(() => finishLoading(embedScripts()[0]));
    await loaded(1);
    expect(onError).toHaveBeenCalledTimes(1);
  });

  it('calls onError when a loaded script does not define the widget', async () => {
    const serverUrl = newServerUrl();
    const onError = vi.fn();
    render(<ThinnestVoiceWidget {...REQUIRED} serverUrl={serverUrl} onError={onError} />);
    act(() => embedScripts()[0].dispatchEvent(new Event('load')));
    await waitFor(() => expect(onError).toHaveBeenCalledTimes(1));
    expect(onError.mock.calls[0][0]).toMatchObject({ code: 'script_load_failed' });
  });

  it('says serverUrl is required when the page has no widget.js', async () => {
    const onError = vi.fn();
    render(<ThinnestVoiceWidget {...REQUIRED} onError={onError} />);
    await waitFor(() => expect(onError).toHaveBeenCalledTimes(1));
    expect(onError.mock.calls[0][0]).toMatchObject({ code: 'invalid_config' });
    expect(onError.mock.calls[0][0].error).toContain('serverUrl is required');
    expect(embedScripts()).toHaveLength(0);
  });

  it('uses the ThinnestAI already on the page without loading anything', async () => {
    window.ThinnestAI = fakeApi();
    render(<ThinnestVoiceWidget {...REQUIRED} />);
    const [widget] = await loaded();
    expect(widget.options.serverUrl).toBeUndefined();
    expect(embedScripts()).toHaveLength(0);
  });

  it('reports a widget that fails to start through onError', async () => {
    const onError = vi.fn();
    window.ThinnestAI = fakeApi({
      Widget: function Broken() {
        throw new Error('no shadow DOM');
      } as never,
    });
    render(<ThinnestVoiceWidget {...REQUIRED} onError={onError} />);
    await waitFor(() =>
      expect(onError).toHaveBeenCalledWith({ error: 'no shadow DOM', code: 'widget_failed' }),
    );
  });

  it('gives a ref that drives the widget', async () => {
    const ref = createRef<ThinnestVoiceWidgetHandle>();
    const serverUrl = newServerUrl();
    render(<ThinnestVoiceWidget ref={ref} {...REQUIRED} serverUrl={serverUrl} />);
    expect(ref.current!.widget).toBeNull();
    await expect(ref.current!.startCall()).resolves.toBeNull();
    act(() => finishLoading(embedScripts()[0]));
    const [widget] = await loaded();
    expect(ref.current!.widget).toBe(widget);
    ref.current!.open();
    await ref.current!.startCall();
    await ref.current!.endCall();
    ref.current!.close();
    expect(widget.open).toHaveBeenCalledTimes(1);
    expect(widget.startCall).toHaveBeenCalledTimes(1);
    expect(widget.endCall).toHaveBeenCalledTimes(1);
    expect(widget.close).toHaveBeenCalledTimes(1);
  });

  it('renders nothing in place', () => {
    const { container } = render(<ThinnestVoiceWidget {...REQUIRED} serverUrl={newServerUrl()} />);
    expect(container.innerHTML).toBe('');
  });
});
