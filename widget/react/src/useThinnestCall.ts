import { useCallback, useEffect, useRef, useState } from 'react';

import { loadThinnest } from './loadThinnest';
import type {
  CallStatus,
  CreateCallOptions,
  ThinnestAIGlobal,
  ThinnestCallSession,
  ThinnestError,
  ThinnestTranscript,
  ThinnestTranscriptPartial,
} from './types';

export interface UseThinnestCallOptions extends CreateCallOptions {
  /** The voice server; required unless the page already loads its widget.js or sdk.js. */
  serverUrl?: string;
}

export interface ThinnestCallState {
  status: CallStatus;
  sessionId: string | null;
  /** The conversation so far: one final line per utterance, in order. */
  transcript: ThinnestTranscript[];
  /**
   * Utterances in progress, in the order they began (at most one per `utteranceId`): show them
   * after `transcript`, e.g. dimmed. Each leaves this list when its final line joins `transcript`.
   */
  partials: ThinnestTranscriptPartial[];
  error: ThinnestError | null;
  /** Seconds, once the call has ended. */
  duration: number | null;
  muted: boolean;
}

export interface UseThinnestCall extends ThinnestCallState {
  /** Start a call: call it from a click handler (mobile browsers play audio only after one). */
  start(): Promise<void>;
  hangUp(): Promise<void>;
  setMuted(muted: boolean): void;
}

const IDLE: ThinnestCallState = {
  status: 'idle',
  sessionId: null,
  transcript: [],
  partials: [],
  error: null,
  duration: null,
  muted: false,
};

/** A partial replaces the one with its utteranceId, in place; an empty one takes it away. */
function withPartial(
  partials: ThinnestTranscriptPartial[],
  partial: ThinnestTranscriptPartial,
): ThinnestTranscriptPartial[] {
  const at = partials.findIndex((p) => p.utteranceId === partial.utteranceId);
  if (!partial.text) return at < 0 ? partials : partials.filter((_, i) => i !== at);
  if (at < 0) return [...partials, partial];
  return partials.map((p, i) => (i === at ? partial : p));
}

function withFinal(s: ThinnestCallState, line: ThinnestTranscript): Partial<ThinnestCallState> {
  return {
    transcript: line.text ? [...s.transcript, line] : s.transcript,
    partials: s.partials.filter((p) => p.utteranceId !== line.utteranceId),
  };
}

/**
 * A call with your own UI, on the product's SDK (`ThinnestAI.createCall`). The script is
 * loaded when the component mounts, so that `start()` runs within the user's click.
 */
export function useThinnestCall(options: UseThinnestCallOptions): UseThinnestCall {
  const [state, setState] = useState<ThinnestCallState>(IDLE);
  const optionsRef = useRef(options);
  const callRef = useRef<ThinnestCallSession | null>(null);
  const mounted = useRef(true);
  useEffect(() => {
    optionsRef.current = options;
  });

  const { serverUrl } = options;
  useEffect(() => {
    loadThinnest(serverUrl).catch(() => {
      /* reported by start() */
    });
  }, [serverUrl]);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      void callRef.current?.disconnect();
      callRef.current = null;
    };
  }, []);

  const update = useCallback((change: (s: ThinnestCallState) => Partial<ThinnestCallState>) => {
    if (mounted.current) setState((s) => ({ ...s, ...change(s) }));
  }, []);

  const start = useCallback(async () => {
    const current = callRef.current;
    if (current && !['ended', 'error'].includes(current.status)) return;
    const { serverUrl: url, ...callOptions } = optionsRef.current;
    setState({ ...IDLE, status: 'connecting' });
    let api: ThinnestAIGlobal;
    try {
      // Synchronously when loaded (the usual case): createCall must run inside the click.
      api = window.ThinnestAI?.createCall ? window.ThinnestAI : await loadThinnest(url);
    } catch (error) {
      const e = error as Error & { code?: string };
      update(() => ({ status: 'error', error: { error: e.message, code: e.code } }));
      return;
    }
    let call: ThinnestCallSession;
    try {
      call = await api.createCall({ ...callOptions, serverUrl: url });
    } catch (error) {
      const e = error as Error & { code?: string };
      update(() => ({ status: 'error', error: { error: e.message, code: e.code } }));
      return;
    }
    callRef.current = call;
    // Events of a call that a newer one replaced are ignored.
    const on = <T>(event: string, change: (data: T, s: ThinnestCallState) => Partial<ThinnestCallState>) =>
      call.on(event, (data: T) => {
        if (callRef.current === call) update((s) => change(data, s));
      });
    on<{ status: CallStatus }>('status', (d) => ({ status: d.status }));
    on<{ sessionId: string }>('connected', (d) => ({ sessionId: d.sessionId }));
    on<ThinnestTranscript>('transcript', (d, s) => withFinal(s, d));
    on<ThinnestTranscriptPartial>('transcript_partial', (d, s) => ({ partials: withPartial(s.partials, d) }));
    on<{ message: string; code?: string }>('error', (d) => ({ error: { error: d.message, code: d.code } }));
    on<{ duration: number }>('ended', (d) => ({ duration: d.duration }));
    on<{ muted: boolean }>('mute', (d) => ({ muted: d.muted }));
    try {
      await call.connect();
    } catch {
      // Reported through the call's 'error' event.
    }
  }, [update]);

  const hangUp = useCallback(async () => {
    await callRef.current?.disconnect();
  }, []);

  const setMuted = useCallback((muted: boolean) => {
    callRef.current?.mute(muted);
  }, []);

  return { ...state, start, hangUp, setMuted };
}
