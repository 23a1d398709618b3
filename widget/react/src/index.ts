export { ThinnestVoiceWidget } from './ThinnestVoiceWidget';
export type { ThinnestVoiceWidgetHandle, ThinnestVoiceWidgetProps } from './ThinnestVoiceWidget';
export { useThinnestCall } from './useThinnestCall';
export type { ThinnestCallState, UseThinnestCall, UseThinnestCallOptions } from './useThinnestCall';
export { loadThinnest, widgetScriptUrl } from './loadThinnest';
export type {
  CallStatus,
  CreateCallOptions,
  ThinnestAIGlobal,
  ThinnestCallSession,
  ThinnestError,
  ThinnestTranscript,
  ThinnestTranscriptPartial,
  ThinnestWidget,
  ThinnestWidgetOptions,
  WidgetPosition,
  WidgetTheme,
} from './types';
