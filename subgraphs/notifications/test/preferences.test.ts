import { describe, expect, it } from 'vitest';
import { isPublicEndpointHost, pushSubscriptionInput } from '../src/notification.input.js';
import { assertChangeable, effectivePreferences, isEnabled } from '../src/preferences.js';

const USER = '01890000-0000-7000-8000-000000000001';

describe('notification preferences', () => {
  it('cover every category and channel, with defaults where nothing was set', () => {
    const all = effectivePreferences([]);
    expect(all).toHaveLength(16);
    expect(all.find((p) => p.category === 'product' && p.channel === 'email')?.enabled).toBe(false);
    expect(all.find((p) => p.category === 'welcome' && p.channel === 'in_app')?.enabled).toBe(true);
  });

  it('follow what the person set', () => {
    const stored = [{ userId: USER, category: 'product' as const, channel: 'email' as const, enabled: true }];
    expect(isEnabled(stored, 'product', 'email')).toBe(true);
    expect(isEnabled([], 'product', 'email')).toBe(false);
  });

  it('keep security mails on, whatever is stored, and refuse turning them off', () => {
    const stored = [
      { userId: USER, category: 'security' as const, channel: 'email' as const, enabled: false },
    ];
    expect(isEnabled(stored, 'security', 'email')).toBe(true);
    expect(
      effectivePreferences([]).find((p) => p.category === 'security' && p.channel === 'email'),
    ).toMatchObject({
      enabled: true,
      changeable: false,
    });
    expect(() => assertChangeable([{ category: 'security', channel: 'email', enabled: false }])).toThrow(
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }),
    );
    expect(() => assertChangeable([{ category: 'security', channel: 'sms', enabled: false }])).not.toThrow();
  });
});

describe('push subscription input', () => {
  const keys = { p256dh: `B${'A'.repeat(86)}`, auth: 'AAAAAAAAAAAAAAAAAAAAAA' };

  it('accepts a push service on a public host', () => {
    expect(
      pushSubscriptionInput.safeParse({ endpoint: 'https://fcm.googleapis.com/fcm/send/abc', keys }).success,
    ).toBe(true);
  });

  it('refuses endpoints aimed inside the network, and plain http', () => {
    for (const endpoint of [
      'http://push.example.com/x',
      'https://localhost/x',
      'https://127.0.0.1/x',
      'https://10.1.2.3/x',
      'https://169.254.169.254/latest',
      'https://192.168.0.1/x',
      'https://[::1]/x',
      'https://[fd00::1]/x',
    ]) {
      expect(pushSubscriptionInput.safeParse({ endpoint, keys }).success, endpoint).toBe(false);
    }
    expect(isPublicEndpointHost('updates.push.services.mozilla.com')).toBe(true);
    expect(isPublicEndpointHost('8.8.8.8')).toBe(true);
  });
});
