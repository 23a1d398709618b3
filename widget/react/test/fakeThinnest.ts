import { vi } from 'vitest';

import type { ThinnestAIGlobal, ThinnestWidgetOptions } from '../src/types';

/** Stands in for `ThinnestAI.Widget` from the product's widget.js: records what it is given. */
export class FakeWidget {
  static instances: FakeWidget[] = [];
  options: ThinnestWidgetOptions;
  destroyed = false;
  call = null;
  host = document.createElement('div');
  open = vi.fn();
  close = vi.fn();
  toggle = vi.fn();
  startCall = vi.fn(() => Promise.resolve(null));
  endCall = vi.fn(() => Promise.resolve());
  on = vi.fn();
  off = vi.fn();

  constructor(options: ThinnestWidgetOptions) {
    this.options = options;
    FakeWidget.instances.push(this);
  }

  destroy() {
    this.destroyed = true;
  }

  static live(): FakeWidget[] {
    return FakeWidget.instances.filter((w) => !w.destroyed);
  }
}

type Handler = (data: any) => void;

/** Stands in for a `CallSession` from `ThinnestAI.createCall`. */
export class FakeCall {
  handlers: Record<string, Handler[]> = {};
  sessionId: string | null = null;
  status = 'idle';
  muted = false;
  duration = 0;
  connect = vi.fn(() => {
    this.emit('status', { status: 'connecting' });
    return Promise.resolve(this);
  });
  disconnect = vi.fn(() => {
    this.emit('ended', { sessionId: this.sessionId, duration: 3.5 });
    return Promise.resolve();
  });
  mute = vi.fn((muted: boolean) => {
    this.muted = muted;
    this.emit('mute', { muted });
    return muted;
  });

  on(event: string, handler: Handler) {
    (this.handlers[event] ??= []).push(handler);
    return this;
  }

  off() {
    return this;
  }

  emit(event: string, data: unknown) {
    if (event === 'status') this.status = (data as { status: string }).status;
    (this.handlers[event] ?? []).forEach((h) => h(data));
  }
}

export function fakeApi(overrides: Partial<ThinnestAIGlobal> = {}): ThinnestAIGlobal {
  return {
    version: '1.0.0',
    serverUrl: '',
    Widget: FakeWidget as unknown as ThinnestAIGlobal['Widget'],
    createCall: vi.fn(() => Promise.resolve(new FakeCall() as never)),
    isSupported: () => true,
    unsupportedReason: () => null,
    requestMicrophone: vi.fn(),
    ...overrides,
  };
}

export function embedScripts(): HTMLScriptElement[] {
  return Array.from(document.querySelectorAll<HTMLScriptElement>('script[data-thinnest-embed]'));
}

/** What the browser does when widget.js has run: ThinnestAI is defined, then `load` fires. */
export function finishLoading(script: HTMLScriptElement, api: ThinnestAIGlobal = fakeApi()) {
  window.ThinnestAI = api;
  script.dispatchEvent(new Event('load'));
}

export function failLoading(script: HTMLScriptElement) {
  script.dispatchEvent(new Event('error'));
}

let servers = 0;

/** A server URL of its own for each test: the script cache lives for the whole page. */
export function newServerUrl(): string {
  servers += 1;
  return `https://voice${servers}.example.com/`;
}

export function reset() {
  FakeWidget.instances = [];
  delete window.ThinnestAI;
  embedScripts().forEach((s) => s.remove());
}
