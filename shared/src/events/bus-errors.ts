// The two kinds of publish failure the outbox relay tells apart: an event that can never be published as it is
// (permanent: the relay quarantines it at once) and a bus that cannot take anything right now (transient: the
// relay keeps the event and its place in line, and counts no attempt against it).

/** The event does not match the catalog (envelope or data). Retrying cannot help. */
export class EventValidationError extends Error {
  override readonly name = 'EventValidationError';
}

/**
 * The bus cannot be reached or did not answer in time (disconnected, connecting, publish deadline passed, no
 * JetStream responder). Nothing is wrong with the event: retry later.
 */
export class BusUnavailableError extends Error {
  override readonly name = 'BusUnavailableError';
}

export function isEventValidationError(error: unknown): error is EventValidationError {
  return error instanceof EventValidationError;
}

export function isBusUnavailable(error: unknown): error is BusUnavailableError {
  return error instanceof BusUnavailableError;
}
