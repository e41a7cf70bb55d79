import { eventDirectory } from '@aiva/shared';
import { describe, expect, it } from 'vitest';
import { CONSUMERS } from '../src/events.js';

// The event catalog's directory (and the README's table made from it) names the consumers the service really
// subscribes with.
describe('media consumers', () => {
  it('are all listed in the event directory', () => {
    const listed = Object.values(eventDirectory).flatMap((info) => info.consumers);
    expect(listed.filter((name) => name.startsWith('media.')).sort()).toEqual(
      Object.values(CONSUMERS).sort(),
    );
  });
});
