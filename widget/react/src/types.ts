/**
 * The parts of the product's browser API (served at `/widget.js`: widget/embed/sdk.js followed
 * by widget/embed/widget.js) that this package uses. The product's scripts are the source of
 * truth; these declarations follow them.
 */

export type WidgetPosition = 'bottom-right' | 'bottom-left';
export type WidgetTheme = 'light' | 'dark';

/** What onError receives: the widget's `call:error` payload. */
export interface ThinnestError {
  error: string;
  code?: string;
}

/**
 * One utterance, final: the caller's once their turn has ended, the agent's once it has been
 * spoken (or, when the caller cut in, as far as it was heard). Sent once per utterance, so each
 * may be appended as a line.
 */
export interface ThinnestTranscript {
  role: 'user' | 'agent';
  text: string;
  final: true;
  /** The utterance (`user-3`, `agent-4`): the same id as its partials. */
  utteranceId: string;
}

/**
 * An utterance in progress: its whole text so far, replacing the previous partial with the same
 * `utteranceId` (and replaced by that utterance's final transcript). An empty `text` takes the
 * live line away: an agent reply cut off before any of it was heard.
 */
export interface ThinnestTranscriptPartial {
  role: 'user' | 'agent';
  text: string;
  utteranceId: string;
}

export type CallStatus =
  | 'idle'
  | 'connecting'
  | 'connected'
  | 'agent_speaking'
  | 'listening'
  | 'reconnecting'
  | 'ended'
  | 'error';

/** The options of `new ThinnestAI.Widget(options)` and `ThinnestAI.init(options)`. */
export interface ThinnestWidgetOptions {
  agentId: string;
  apiKey: string;
  position?: WidgetPosition;
  theme?: WidgetTheme;
  greeting?: string;
  primaryColor?: string;
  autoOpen?: boolean;
  context?: Record<string, unknown>;
  serverUrl?: string;
  fallbackPhone?: string;
  requestMicrophoneEarly?: boolean;
  onCallStart?: (sessionId: string) => void;
  onCallEnd?: (sessionId: string, duration: number) => void;
  onError?: (error: ThinnestError) => void;
  onTranscript?: (transcript: ThinnestTranscript) => void;
  onTranscriptPartial?: (partial: ThinnestTranscriptPartial) => void;
}

type Handler = (data: any) => void;

export interface ThinnestEmitter {
  on(event: string, callback: Handler): unknown;
  off(event: string, callback?: Handler): unknown;
}

/** One call (`ThinnestAI.createCall`). */
export interface ThinnestCallSession extends ThinnestEmitter {
  readonly sessionId: string | null;
  readonly status: CallStatus;
  readonly muted: boolean;
  readonly duration: number;
  connect(): Promise<ThinnestCallSession>;
  disconnect(): Promise<void>;
  mute(muted?: boolean): boolean;
}

export interface CreateCallOptions {
  agentId?: string;
  apiKey?: string;
  context?: Record<string, unknown>;
  serverUrl?: string;
  /** Your backend starts the call with its secret key and returns {session_id, token, websocket_url}. */
  startSession?: () => Promise<{ session_id: string; token: string; websocket_url: string }>;
  reconnectTimeout?: number;
}

/** One widget on the page (`new ThinnestAI.Widget(options)`). */
export interface ThinnestWidget extends ThinnestEmitter {
  readonly options: ThinnestWidgetOptions;
  readonly call: ThinnestCallSession | null;
  readonly host: HTMLElement;
  open(): void;
  close(): void;
  toggle(): void;
  startCall(): Promise<ThinnestCallSession | null>;
  endCall(): Promise<void>;
  destroy(): void;
}

export interface ThinnestAIGlobal {
  version: string;
  serverUrl: string;
  createCall(options: CreateCallOptions): Promise<ThinnestCallSession>;
  Widget: new (options: ThinnestWidgetOptions) => ThinnestWidget;
  isSupported(): boolean;
  unsupportedReason(): string | null;
  requestMicrophone(): Promise<MediaStream>;
}

declare global {
  interface Window {
    ThinnestAI?: ThinnestAIGlobal;
  }
}
