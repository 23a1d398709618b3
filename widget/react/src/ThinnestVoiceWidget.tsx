import { forwardRef, useEffect, useImperativeHandle, useRef } from 'react';

import { loadThinnest } from './loadThinnest';
import type { ThinnestCallSession, ThinnestWidget, ThinnestWidgetOptions } from './types';

export interface ThinnestVoiceWidgetProps extends ThinnestWidgetOptions {
  /**
   * The voice server, e.g. `https://voice.example.com`: `${serverUrl}/widget.js` is loaded from
   * it and calls go to it. Required unless the page already has the script tag.
   */
  serverUrl?: string;
}

/** What a `ref` on `<ThinnestVoiceWidget>` gives: the page's widget, to drive from your own UI. */
export interface ThinnestVoiceWidgetHandle {
  /** The `ThinnestAI.Widget` instance, or null while the script loads. */
  readonly widget: ThinnestWidget | null;
  open(): void;
  close(): void;
  startCall(): Promise<ThinnestCallSession | null>;
  endCall(): Promise<void>;
}

function errorCode(error: unknown, fallback: string): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : fallback;
}

/**
 * The product's embed widget (`ThinnestAI.Widget` from `${serverUrl}/widget.js`) as a React
 * component. It renders nothing in place: the widget is a floating button in a Shadow DOM
 * attached to `document.body`, as with the script-tag integration.
 *
 * A change of any option makes a new widget (the old one is destroyed, hanging up its call); a
 * change of a callback does not: callbacks are read when the event happens.
 */
export const ThinnestVoiceWidget = forwardRef<ThinnestVoiceWidgetHandle, ThinnestVoiceWidgetProps>(
  function ThinnestVoiceWidget(props, ref) {
    const {
      agentId,
      apiKey,
      position,
      theme,
      greeting,
      primaryColor,
      autoOpen,
      context,
      serverUrl,
      fallbackPhone,
      requestMicrophoneEarly,
    } = props;
    const callbacks = useRef(props);
    const widgetRef = useRef<ThinnestWidget | null>(null);
    // Callbacks are called from the widget's events, always after a commit: an effect is soon
    // enough to see the latest ones.
    useEffect(() => {
      callbacks.current = props;
    });

    // An inline `context={{...}}` is a new object on each render: compare by value.
    const contextKey = JSON.stringify(context ?? {});

    useEffect(() => {
      let cancelled = false;
      let widget: ThinnestWidget | null = null;
      const reportError = (error: unknown, code: string) => {
        const message = error instanceof Error ? error.message : String(error);
        callbacks.current.onError?.({ error: message, code: errorCode(error, code) });
      };
      loadThinnest(serverUrl).then(
        (api) => {
          if (cancelled) return;
          try {
            widget = new api.Widget({
              agentId,
              apiKey,
              position,
              theme,
              greeting,
              primaryColor,
              autoOpen,
              context: JSON.parse(contextKey) as Record<string, unknown>,
              serverUrl,
              fallbackPhone,
              requestMicrophoneEarly,
              onCallStart: (sessionId) => callbacks.current.onCallStart?.(sessionId),
              onCallEnd: (sessionId, duration) => callbacks.current.onCallEnd?.(sessionId, duration),
              onError: (error) => callbacks.current.onError?.(error),
              onTranscript: (transcript) => callbacks.current.onTranscript?.(transcript),
              onTranscriptPartial: (partial) => callbacks.current.onTranscriptPartial?.(partial),
            });
            widgetRef.current = widget;
          } catch (error) {
            // Whatever happens, the host app goes on (as ThinnestAI.init does).
            reportError(error, 'widget_failed');
          }
        },
        (error: unknown) => {
          if (!cancelled) reportError(error, 'script_load_failed');
        },
      );
      return () => {
        cancelled = true;
        if (widget) widget.destroy();
        if (widgetRef.current === widget) widgetRef.current = null;
      };
    }, [
      agentId,
      apiKey,
      position,
      theme,
      greeting,
      primaryColor,
      autoOpen,
      contextKey,
      serverUrl,
      fallbackPhone,
      requestMicrophoneEarly,
    ]);

    useImperativeHandle(
      ref,
      () => ({
        get widget() {
          return widgetRef.current;
        },
        open: () => widgetRef.current?.open(),
        close: () => widgetRef.current?.close(),
        startCall: () => widgetRef.current?.startCall() ?? Promise.resolve(null),
        endCall: () => widgetRef.current?.endCall() ?? Promise.resolve(),
      }),
      [],
    );

    return null;
  },
);
