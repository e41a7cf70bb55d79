/** The model capabilities the AI subgraph uses, one candidate list each. */
export type Capability = 'chat' | 'embedding' | 'image' | 'transcription' | 'speech';

/** The variable listing a capability's `provider:model` candidates. */
export const CAPABILITY_VARIABLES: Record<Capability, string> = {
  chat: 'AI_CHAT_MODELS',
  embedding: 'AI_EMBEDDING_MODELS',
  image: 'AI_IMAGE_MODELS',
  transcription: 'AI_TRANSCRIPTION_MODELS',
  speech: 'AI_SPEECH_MODELS',
};

/** A provider key that can serve the capability, for the "e.g." of NotConfiguredError's message. */
const EXAMPLE_KEY: Record<Capability, string> = {
  chat: 'OPENAI_API_KEY',
  embedding: 'OPENAI_API_KEY',
  image: 'OPENAI_API_KEY',
  transcription: 'OPENAI_API_KEY',
  speech: 'ELEVENLABS_API_KEY',
};

/**
 * A capability has no candidate model: neither its AI_*_MODELS variable nor a provider key that implies a
 * default. Thrown when the capability is used (not at start: a service without images still runs).
 */
export class NotConfiguredError extends Error {
  constructor(
    readonly capability: Capability,
    readonly variable: string = CAPABILITY_VARIABLES[capability],
  ) {
    super(
      `No ${capability} model is configured: set ${variable} and the provider's key (e.g. ${EXAMPLE_KEY[capability]})`,
    );
    this.name = 'NotConfiguredError';
  }
}

/**
 * Why a provider call failed, coarsely: what the policy acts on and what a caller may show.
 * - `rate_limited`: HTTP 429. `unavailable`: 408, 409 or 5xx. `network`: no HTTP answer (refused, reset).
 * - `timeout`: no answer (or first streamed token) within AI_CALL_TIMEOUT_MS.
 * - `auth`: 401, 402 (billing) or 403. `not_found`: 404 (an unknown model at this provider).
 * - `rejected`: another 4xx (the request itself is refused: too long, bad parameter).
 * - `invalid_response`: the provider answered something that could not be read, or nothing.
 * - `stream_broken`: a streamed answer failed after its first token (never retried: text was delivered).
 */
export type ProviderErrorKind =
  | 'rate_limited'
  | 'unavailable'
  | 'network'
  | 'timeout'
  | 'auth'
  | 'not_found'
  | 'rejected'
  | 'invalid_response'
  | 'stream_broken';

/** One failed attempt, as kept on the final error: enough to tell what each candidate did. */
export interface ProviderFailure {
  provider: string;
  model: string;
  kind: ProviderErrorKind;
  status?: number;
}

export interface ProviderErrorInit extends ProviderFailure {
  retryable: boolean;
  /** What the provider said, already cleaned of secrets and shortened (see `safeDetail`). */
  detail?: string;
  /** Earlier failed candidates, in order, when this error ends a fallback chain. */
  attempts?: ProviderFailure[];
}

/**
 * A model call failed. Carries the provider, model, HTTP status and whether a retry could help. Built only
 * from sanitized fields: never the API key, the prompt or the SDK's error (whose `requestBodyValues` hold the
 * prompt), so logging it whole is safe.
 */
export class ProviderError extends Error {
  readonly provider: string;
  readonly model: string;
  readonly kind: ProviderErrorKind;
  readonly status: number | undefined;
  readonly retryable: boolean;
  /** The provider's message, cleaned of secrets and shortened; undefined when there was none. */
  readonly detail: string | undefined;
  readonly attempts: ProviderFailure[];

  constructor(init: ProviderErrorInit) {
    const status = init.status === undefined ? '' : ` (HTTP ${init.status})`;
    const detail = init.detail ? `: ${init.detail}` : '';
    const tried =
      init.attempts && init.attempts.length > 0
        ? ` [after ${init.attempts.map((a) => `${a.provider}:${a.model} ${a.kind}`).join(', ')}]`
        : '';
    super(`${init.provider}:${init.model} failed, ${init.kind}${status}${detail}${tried}`);
    this.name = 'ProviderError';
    this.provider = init.provider;
    this.model = init.model;
    this.kind = init.kind;
    this.status = init.status;
    this.retryable = init.retryable;
    this.detail = init.detail;
    this.attempts = init.attempts ?? [];
  }

  /** This error as one entry of a later error's `attempts`. */
  toFailure(): ProviderFailure {
    return {
      provider: this.provider,
      model: this.model,
      kind: this.kind,
      ...(this.status === undefined ? {} : { status: this.status }),
    };
  }
}

/** Longest provider message kept on a ProviderError: enough for "model not found", not for an echoed prompt. */
const MAX_DETAIL_CHARS = 160;

/** Token-looking strings providers echo back in auth errors (`sk-…`, `Bearer …`, `key=…`). */
const SECRET_PATTERNS = [
  /\bBearer\s+\S+/gi,
  /\b(sk|pk|hf|xi|tgp)[-_][A-Za-z0-9_-]{6,}/g,
  /\b(api[_-]?key|key|token)=[^&\s"']+/gi,
];

/**
 * A provider's error message made safe to keep: the configured secrets and anything shaped like a token are
 * replaced by `***`, whitespace folded, and the text cut to 160 characters.
 */
export function safeDetail(message: string | undefined, secrets: readonly string[]): string | undefined {
  if (!message) return undefined;
  let text = message;
  for (const secret of secrets) {
    if (secret.length >= 4) text = text.split(secret).join('***');
  }
  for (const pattern of SECRET_PATTERNS) text = text.replace(pattern, '***');
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}…` : text;
}
