import { describe, expect, it } from 'vitest';
import { Breaker, DEFAULT_BREAKER_OPTIONS } from '../src/discovery/breaker.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('Breaker', () => {
  it('opens after consecutive failures and refuses requests until the cool-down ends', () => {
    const time = clock();
    const breaker = new Breaker({ ...DEFAULT_BREAKER_OPTIONS, consecutiveFailures: 3 }, time.now);
    breaker.onFailure();
    breaker.onFailure();
    expect(breaker.state).toBe('closed');
    breaker.onFailure();
    expect(breaker.state).toBe('open');
    expect(breaker.canPass()).toBe(false);
    time.advance(DEFAULT_BREAKER_OPTIONS.cooldownMs - 1);
    expect(breaker.canPass()).toBe(false);
    time.advance(1);
    expect(breaker.state).toBe('half-open');
    expect(breaker.canPass()).toBe(true);
  });

  it('lets one trial through when half-open; its success closes the breaker', () => {
    const time = clock();
    const breaker = new Breaker({ ...DEFAULT_BREAKER_OPTIONS, consecutiveFailures: 1 }, time.now);
    breaker.onFailure();
    time.advance(DEFAULT_BREAKER_OPTIONS.cooldownMs);
    expect(breaker.canPass()).toBe(true);
    breaker.begin();
    expect(breaker.canPass()).toBe(false); // the trial is in flight
    breaker.onSuccess();
    expect(breaker.state).toBe('closed');
    expect(breaker.canPass()).toBe(true);
  });

  it('re-opens with a doubled cool-down when the trial fails', () => {
    const time = clock();
    const options = { ...DEFAULT_BREAKER_OPTIONS, consecutiveFailures: 1, cooldownMs: 100 };
    const breaker = new Breaker(options, time.now);
    breaker.onFailure();
    time.advance(100);
    breaker.begin();
    breaker.onFailure();
    expect(breaker.state).toBe('open');
    time.advance(150);
    expect(breaker.state).toBe('open');
    time.advance(50);
    expect(breaker.state).toBe('half-open');
  });

  it('opens on the error rate of a window once it holds enough requests', () => {
    const time = clock();
    const breaker = new Breaker(
      { ...DEFAULT_BREAKER_OPTIONS, consecutiveFailures: 100, minRequests: 10, errorRate: 0.5 },
      time.now,
    );
    for (let i = 0; i < 4; i++) {
      breaker.onSuccess();
      breaker.onFailure();
    }
    expect(breaker.state).toBe('closed'); // 8 requests: below minRequests
    breaker.onSuccess();
    breaker.onFailure();
    expect(breaker.state).toBe('open'); // 5 of 10 failed
  });

  it('forgets failures of an old window', () => {
    const time = clock();
    const breaker = new Breaker(
      {
        ...DEFAULT_BREAKER_OPTIONS,
        consecutiveFailures: 100,
        minRequests: 4,
        errorRate: 0.5,
        windowMs: 1000,
      },
      time.now,
    );
    breaker.onFailure();
    breaker.onFailure();
    breaker.onSuccess();
    time.advance(1000);
    breaker.onSuccess();
    breaker.onSuccess();
    breaker.onSuccess();
    breaker.onFailure();
    expect(breaker.state).toBe('closed'); // 1 of 4 in the new window
  });
});
