import { randomBytes } from 'node:crypto';
import { chmod, open, readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { z } from 'zod';
import type { Logger } from './log.js';

// Files that hold secrets (signing keys, sealing keys): readable by their owner only, written whole or not at all.

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Reads a JSON file that holds secrets; null when it does not exist. A file that group or other could read is
 * set to 0600 first, with a warning. `label` names the file in messages ("signing key file"); no message ever
 * includes the content.
 */
export async function readPrivateJsonFile(
  file: string,
  label: string,
  logger?: Logger,
): Promise<unknown | null> {
  let text: string;
  try {
    const info = await stat(file);
    if ((info.mode & 0o077) !== 0) {
      await chmod(file, PRIVATE_FILE_MODE);
      logger?.warn(
        { file, mode: (info.mode & 0o777).toString(8) },
        `${label} was accessible to group/other; its mode was changed to 0600`,
      );
    }
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`${label} ${file} is not valid JSON`);
  }
}

/**
 * `readPrivateJsonFile` validated by `schema`: null when the file does not exist; an error naming the file and each
 * invalid path (never a value) when it does not match.
 */
export async function readPrivateFileOf<T>(
  file: string,
  label: string,
  schema: z.ZodType<T>,
  logger?: Logger,
): Promise<T | null> {
  const json = await readPrivateJsonFile(file, label, logger);
  if (json === null) return null;
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const where = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new Error(`${label} ${file} is invalid: ${where.join('; ')}`);
  }
  return parsed.data;
}

/**
 * Writes `data` to a new temp file beside `file` (mode 0600 whatever the umask, fsynced) and hands its path to
 * `place`, which puts it in place (rename to replace the file, link to create it only when absent). Whatever is
 * left of the temp file afterwards is removed.
 */
export async function placePrivateFile(
  file: string,
  data: string,
  place: (tmp: string) => Promise<void>,
): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', PRIVATE_FILE_MODE);
  try {
    try {
      await handle.chmod(PRIVATE_FILE_MODE);
      await handle.writeFile(data, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await place(tmp);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}
