import { badUserInput } from '@aiva/shared';
import {
  CATEGORIES,
  type Category,
  CHANNELS,
  type Channel,
  type PreferenceRecord,
} from './store/notification.store.js';

/** Whether a category goes to a channel when the person never said otherwise. */
const DEFAULTS: Record<Category, Record<Channel, boolean>> = {
  welcome: { in_app: true, email: true, push: false, sms: false },
  security: { in_app: true, email: true, push: false, sms: false },
  activity: { in_app: true, email: true, push: true, sms: false },
  product: { in_app: true, email: false, push: false, sms: false },
};

/** Security mails (password reset, email verification, email change) always go out. */
export function isChangeable(category: Category, channel: Channel): boolean {
  return !(category === 'security' && channel === 'email');
}

export interface EffectivePreference {
  category: Category;
  channel: Channel;
  enabled: boolean;
  changeable: boolean;
}

/** Every category and channel: what the person set, else the default; fixed ones as they are fixed. */
export function effectivePreferences(stored: readonly PreferenceRecord[]): EffectivePreference[] {
  const set = new Map(stored.map((p) => [`${p.category}/${p.channel}`, p.enabled]));
  return CATEGORIES.flatMap((category) =>
    CHANNELS.map((channel) => {
      const changeable = isChangeable(category, channel);
      const enabled = changeable
        ? (set.get(`${category}/${channel}`) ?? DEFAULTS[category][channel])
        : DEFAULTS[category][channel];
      return { category, channel, enabled, changeable };
    }),
  );
}

/** Whether `category` goes to `channel` for a person with these stored preferences. */
export function isEnabled(
  stored: readonly PreferenceRecord[],
  category: Category,
  channel: Channel,
): boolean {
  return effectivePreferences(stored).some(
    (p) => p.category === category && p.channel === channel && p.enabled,
  );
}

/** Refuses a change of a fixed preference (BAD_USER_INPUT naming it); fixed ones left as they are pass. */
export function assertChangeable(changes: ReadonlyArray<Omit<PreferenceRecord, 'userId'>>): void {
  for (const change of changes) {
    if (!isChangeable(change.category, change.channel) && !change.enabled) {
      throw badUserInput('Security mails cannot be turned off', {
        field: 'input',
        preference: `${change.category.toUpperCase()}/${change.channel.toUpperCase()}`,
      });
    }
  }
}
