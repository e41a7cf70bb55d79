import { assertChangeable, type EffectivePreference, effectivePreferences } from './preferences.js';
import type { Category, Channel, NotificationStore } from './store/notification.store.js';

/** The person's settings: preferences per category and channel, Web Push subscriptions, the SMS number. */
export class PreferenceService {
  constructor(
    private readonly store: NotificationStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(userId: string): Promise<EffectivePreference[]> {
    return effectivePreferences(await this.store.preferences(userId));
  }

  /** Applies the changes (a security mail cannot be turned off: BAD_USER_INPUT) and returns all preferences. */
  async update(
    userId: string,
    changes: Array<{ category: Category; channel: Channel; enabled: boolean }>,
  ): Promise<EffectivePreference[]> {
    assertChangeable(changes);
    await this.store.setPreferences(changes.map((change) => ({ ...change, userId })));
    return this.list(userId);
  }

  registerPush(
    userId: string,
    input: { endpoint: string; keys: { p256dh: string; auth: string } },
  ): Promise<void> {
    return this.store.savePushSubscription({
      endpoint: input.endpoint,
      userId,
      p256dh: input.keys.p256dh,
      auth: input.keys.auth,
      createdAt: this.now(),
    });
  }

  removePush(userId: string, endpoint: string): Promise<boolean> {
    return this.store.removePushSubscription(userId, endpoint);
  }

  setSmsNumber(userId: string, smsNumber: string | null): Promise<void> {
    return this.store.setSmsNumber(userId, smsNumber, this.now());
  }
}
