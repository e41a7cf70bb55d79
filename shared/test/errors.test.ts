import { GraphQLError } from 'graphql';
import { describe, expect, it, vi } from 'vitest';
import { AivaError, conflict, createFormatError, ERROR_CODES } from '../src/errors.js';

const format = (error: GraphQLError, onInternalError = vi.fn()) => ({
  result: createFormatError({ onInternalError })(
    { message: error.message, extensions: error.extensions, path: ['user'] },
    error,
  ),
  onInternalError,
});

describe('createFormatError', () => {
  it('passes domain errors through with their code and details', () => {
    const { result } = format(
      new GraphQLError('wrapped', { originalError: conflict('Email taken', { field: 'email' }) }),
    );
    expect(result.extensions).toEqual({ code: 'CONFLICT', field: 'email' });
  });

  it('hides unexpected errors behind INTERNAL_SERVER_ERROR and reports them', () => {
    const boom = new Error('connection to /var/secret/db failed');
    const { result, onInternalError } = format(new GraphQLError(boom.message, { originalError: boom }));
    expect(result).toEqual({
      message: 'Internal server error',
      path: ['user'],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(JSON.stringify(result)).not.toContain('secret');
    expect(onInternalError).toHaveBeenCalledWith(boom);
  });

  it('maps Apollo request errors onto the vocabulary', () => {
    const { result } = format(
      new GraphQLError('Syntax Error', { extensions: { code: 'GRAPHQL_PARSE_FAILED' } }),
    );
    expect(result.extensions?.code).toBe('BAD_USER_INPUT');
    const validation = format(
      new GraphQLError('Cannot query field', { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }),
    );
    expect(validation.result.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('drops stack traces and non-plain extension values', () => {
    const { result } = format(
      new GraphQLError('Nope', {
        originalError: new AivaError('FORBIDDEN', 'Nope'),
        extensions: { stacktrace: ['at x'], exception: { a: 1 }, field: 'id' },
      }),
    );
    expect(result.extensions).toEqual({ code: 'FORBIDDEN', field: 'id' });
  });

  it('relays errors the gateway attributes to a subgraph', () => {
    const { result, onInternalError } = format(
      new GraphQLError('The users service is unavailable', {
        extensions: { code: 'INTERNAL_SERVER_ERROR', serviceName: 'users' },
      }),
    );
    expect(result.message).toBe('The users service is unavailable');
    expect(result.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', serviceName: 'users' });
    expect(onInternalError).not.toHaveBeenCalled();
  });

  it('has a small fixed vocabulary', () => {
    expect(ERROR_CODES).toEqual([
      'BAD_USER_INPUT',
      'UNAUTHENTICATED',
      'FORBIDDEN',
      'NOT_FOUND',
      'CONFLICT',
      'RATE_LIMITED',
      'INTERNAL_SERVER_ERROR',
    ]);
  });
});
