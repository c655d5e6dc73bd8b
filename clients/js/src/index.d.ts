// Types of @switchboard/client (docs/client-protocol.md).

/** One usage record, as the server sends it in `usage` and stores it. */
export interface UsageRecord {
  session_id: string;
  line: string;
  seq: number;
  service: 'stt' | 'llm' | 'tts' | 'telephony' | 'platform' | string;
  provider: string;
  model: string;
  quantity: number;
  quantity_atoms: number;
  unit: string;
  /** Who pays: the plan's credits, the org's own provider key, or the wallet. */
  billed_to: 'managed' | 'byok' | 'wallet';
  /** What the org is charged, micro-USD (for `byok`: the platform markup only). */
  amount_micros: number;
  /** The provider's list price of the quantity. */
  list_micros: number;
  org_id: string;
  estimated: boolean;
  credential_id: string;
  created_at_ms: number;
}

export interface StartedEvent { type: 'started'; session_id: string; call_sid: string }
export interface TranscriptEvent { type: 'transcript'; text: string; is_final: boolean }
export interface AgentEvent { type: 'agent'; text: string; turn: number }
export interface AgentDoneEvent { type: 'agent_done'; text: string; turn: number }
export interface BargeInEvent { type: 'barge_in'; turn: number; played_ms: number; kept_text: string }
export interface ClearEvent { type: 'clear' }
export interface MarkEvent { type: 'mark'; name: string }
export interface DtmfEvent { type: 'dtmf'; digit: string }
/** The model called one of the agent's tools (`arguments` as JSON text). */
export interface ToolCallEvent { type: 'tool_call'; turn: number; call_id: string; name: string; arguments: string }
/** A tool call finished: its result as the model reads it (an error result included). */
export interface ToolResultEvent { type: 'tool_result'; turn: number; call_id: string; name: string; result: string }
export interface ErrorEvent { type: 'error'; code: string; message: string }
export interface UsageEvent { type: 'usage'; records: UsageRecord[] }
export interface EndEvent { type: 'end'; reason: string }

export type ServerEvent =
  | StartedEvent | TranscriptEvent | AgentEvent | AgentDoneEvent | BargeInEvent | ClearEvent
  | MarkEvent | DtmfEvent | ToolCallEvent | ToolResultEvent | ErrorEvent | UsageEvent | EndEvent;

/** How the call ended: the server's end reason (or the close reason), the close code, and its usage. */
export interface CallResult { reason: string; code: number; usage: UsageRecord[] }

export interface EventMap {
  started: StartedEvent; transcript: TranscriptEvent; agent: AgentEvent; agent_done: AgentDoneEvent;
  barge_in: BargeInEvent; clear: ClearEvent; mark: MarkEvent; dtmf: DtmfEvent; tool_call: ToolCallEvent;
  tool_result: ToolResultEvent; error: ErrorEvent;
  usage: UsageEvent; end: EndEvent;
  /** Every text event. */
  '*': ServerEvent;
  /** 20 ms of agent audio, PCM16 mono at the call's sample rate. */
  audio: Int16Array;
  close: CallResult;
}

export declare const EVENT_TYPES: readonly ServerEvent['type'][];

export interface ConnectOptions {
  /** http(s) base URL of the server; default: the page's origin. */
  server?: string;
  /** Agent id; default `default` (the server's own agent, reachable without a token only in sandbox mode). */
  agent?: string;
  /** A single-use client token from `POST /api/client-tokens`. */
  token?: string;
  /** An org API key: exchanged for a client token first, never put in the URL. */
  orgKey?: string;
  /** Names the call for `/api/calls/{callId}`. */
  callId?: string;
  /** 8000, 16000 (default), 24000 or 48000. */
  sampleRate?: number;
  WebSocket?: typeof globalThis.WebSocket;
  fetch?: typeof globalThis.fetch;
}

/** A refusal or failure with the server's stable code (`bad_token`, `unknown_agent`, …). */
export declare class SwitchboardError extends Error {
  code: string;
  constructor(code: string, message: string);
}

export declare class Call {
  /** Open a call; resolves after `started`, rejects with a `SwitchboardError` on refusal. */
  static connect(opts?: ConnectOptions): Promise<Call>;
  readonly sessionId: string | null;
  readonly callSid: string | null;
  readonly sampleRate: number;
  /** The usage records once `usage` arrived. */
  readonly usage: UsageRecord[];
  readonly isLive: boolean;
  /** Resolves when the call is over. */
  readonly ended: Promise<CallResult>;
  on<K extends keyof EventMap>(type: K, fn: (ev: EventMap[K]) => void): () => void;
  /** 20 ms of caller audio, PCM16 mono at the call's rate; false once the call is over. */
  sendAudio(pcm: Int16Array | ArrayBuffer): boolean;
  dtmf(digit: string): void;
  /** Hang up; resolves with the result once the server sent `usage` and `end`. */
  stop(): Promise<CallResult>;
  /** Close the socket without `stop` (ends `gateway_disconnected`). */
  close(): void;
}

export declare function mintClientToken(opts: {
  server?: string; orgKey: string; agentId: string; ttlSeconds?: number; fetch?: typeof globalThis.fetch;
}): Promise<string>;

/** Sum of `amount_micros`. */
export declare function totalMicros(records: UsageRecord[]): number;
/** `1234567` → `"$1.234567"`. */
export declare function formatMicros(micros: number): string;

export interface Microphone { context: AudioContext; stream: MediaStream; stop(): Promise<void> }

/** getUserMedia → AudioWorklet → 20 ms PCM16 frames at `sampleRate`. */
export declare function startMicrophone(opts: {
  onFrame: (pcm: Int16Array) => void; sampleRate?: number; frameMs?: number;
  /** Echo cancellation, noise suppression, gain control (default on). */
  processing?: boolean;
}): Promise<Microphone>;

export declare class Playback {
  constructor(opts?: { sampleRate?: number; context?: AudioContext });
  readonly context: AudioContext;
  readonly stats: { pushed: number; played: number; dropped: number; clears: number };
  /** Frames scheduled and not yet played. */
  readonly queued: number;
  push(pcm: Int16Array): void;
  /** Drop every queued frame now; returns how many. */
  clear(): number;
  /** RMS (0–1) of what plays now. */
  level(): number;
  close(): Promise<void>;
}
