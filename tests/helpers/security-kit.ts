import { randomUUID } from 'node:crypto';
import { type AivaEvent, type EventBus, type EventType, openSealed, type SealingKeys } from '@aiva/shared';
import { bearer, type GraphQLResult, graphql } from './stack.js';

/** Polls `probe` until it returns a value (not undefined/null/false); fails naming `what` after `timeoutMs`. */
export async function waitForValue<T>(
  probe: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<Exclude<T, null | undefined | false>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false)
      return value as Exclude<T, null | undefined | false>;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const PASSWORD = 'correct horse battery';
const PAYLOAD = 'accessToken refreshToken expiresIn user { id }';
export const SIGN_UP = `mutation SignUp($input: SignUpInput!) { signUp(input: $input) { ${PAYLOAD} } }`;
export const SIGN_IN = `mutation SignIn($input: SignInInput!) { signIn(input: $input) { ${PAYLOAD} } }`;
export const REFRESH = `mutation Refresh($t: String!) { refreshSession(refreshToken: $t) { ${PAYLOAD} } }`;

export interface Payload {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  user: { id: string };
}

export type Result<T = Record<string, unknown>> = GraphQLResult<T>;

export const codeOf = (result: { body: { errors?: Array<{ extensions?: Record<string, unknown> }> } }) =>
  result.body.errors?.[0]?.extensions?.code;

/** The mail-carrying events of auth (their tokens sealed). */
export const MAIL_EVENTS = [
  'aiva.auth.password_reset.requested.v1',
  'aiva.auth.email_verification.requested.v1',
  'aiva.auth.email_change.requested.v1',
] as const satisfies readonly EventType[];
export type MailEvent = (typeof MAIL_EVENTS)[number];

export interface Mail {
  event: AivaEvent;
  userId: string;
  email: string;
  /** As it travelled: `sealed:v1:...`. */
  sealedToken: string;
  /** Opened with the sealing keys, as the mail sender would. */
  token: string;
}

/**
 * What a mail sender would receive: every mail event on the bus (a durable consumer of its own), tokens opened
 * with the sealing keys. Subscribe before the stack starts publishing.
 */
export class Mailbox {
  readonly events: AivaEvent[] = [];
  private keys: SealingKeys | undefined;
  readonly consumer = `test.mailbox-${randomUUID().slice(0, 8)}`;

  async subscribe(bus: EventBus, types: readonly EventType[] = MAIL_EVENTS): Promise<void> {
    for (const type of types) {
      await bus.subscribe(this.consumer, type, async (event) => {
        this.events.push(event as AivaEvent);
      });
    }
  }

  /** The keys to open tokens with (the stack's: `stack.auth.sealing`, or loaded from its keys file). */
  useKeys(keys: SealingKeys): void {
    this.keys = keys;
  }

  all(type: MailEvent, email: string): Mail[] {
    return this.events
      .filter(
        (e) => e.type === type && (e.data as { email: string }).email.toLowerCase() === email.toLowerCase(),
      )
      .map((event) => {
        const data = event.data as { userId: string; email: string; token: string };
        if (!this.keys) throw new Error('Mailbox.useKeys() first');
        return {
          event,
          userId: data.userId,
          email: data.email,
          sealedToken: data.token,
          token: openSealed(data.token, this.keys),
        };
      });
  }

  /** Waits for the `nth` (1-based) mail of a type to an address. */
  async next(type: MailEvent, email: string, nth = 1): Promise<Mail> {
    return waitForValue(() => this.all(type, email)[nth - 1], 5_000, `mail #${nth} ${type} to ${email}`);
  }
}

/** People and calls against one GraphQL endpoint (the gateway, or a subgraph reached directly). */
export function accountKit(url: () => string, tag = randomUUID().slice(0, 8)) {
  let seq = 0;
  const call = <T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
  ): Promise<Result<T>> => graphql<T>(url(), query, variables, token ? bearer(token) : {});
  const person = (overrides: Record<string, string> = {}) => {
    seq++;
    return {
      email: `p${seq}-${tag}@example.test`,
      password: PASSWORD,
      username: `p${seq}_${tag}`,
      firstName: 'Pat',
      lastName: `Person ${seq}`,
      ...overrides,
    };
  };
  const signUp = async (input = person()) => {
    const result = await call<{ signUp: Payload }>(SIGN_UP, { input });
    if (result.body.errors) throw new Error(`signUp failed: ${JSON.stringify(result.body.errors)}`);
    return { ...result.body.data!.signUp, input };
  };
  const signIn = (email: string, password: string) =>
    call<{ signIn: Payload }>(SIGN_IN, { input: { email, password } });
  const refresh = (token: string) => call<{ refreshSession: Payload }>(REFRESH, { t: token });
  return { call, person, signUp, signIn, refresh, tag };
}
