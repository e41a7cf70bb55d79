import { randomBytes } from 'node:crypto';
import { createWriteStream, type Dirent } from 'node:fs';
import {
  access,
  chmod,
  constants,
  copyFile,
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '@aiva/shared';
import {
  assertValidKey,
  type ByteRange,
  clampRange,
  DEFAULT_CONTENT_TYPE,
  type FileStorage,
  type ListedObject,
  normalizePrefix,
  type ObjectInfo,
  type PutOptions,
  StorageNotFoundError,
  type StoredObject,
} from './storage.js';

// Layout under the root: the object of key `a/b/c` is the file `<root>/a/b/c`; its content type is in the
// sidecar `<root>/a/b/c~meta` (JSON). Temp files are `<root>/a/b/c~tmp-<random>`. `~` is not allowed in keys,
// so no key can ever name a sidecar or a temp file, and listings skip every name holding a `~`.

const SIDECAR_SUFFIX = '~meta';
const RESERVED_MARK = '~';

interface Sidecar {
  contentType: string;
}

/** Options of the local adapter. */
export interface LocalStorageOptions {
  /** The directory that holds the files (created 0700 when missing), e.g. `.data/media/files`. */
  root: string;
}

function isErrno(error: unknown, ...codes: string[]): boolean {
  return codes.includes((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}

function tempPathBeside(path: string): string {
  return `${path}${RESERVED_MARK}tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Files in a local directory: one instance per service, or several instances sharing one directory (all writes
 * are temp file + rename, so readers see either the old or the new whole file). Files are 0600, directories 0700.
 */
export class LocalFileStorage implements FileStorage {
  readonly kind = 'local' as const;
  readonly root: string;

  constructor(options: LocalStorageOptions) {
    if (!options.root) throw new Error('Local storage needs a root directory');
    this.root = resolve(options.root);
  }

  async put(key: string, body: Readable | Buffer, options: PutOptions): Promise<{ size: number }> {
    const path = this.pathOf(key);
    return this.placeAtomically(path, options, async (tmp) => {
      const handle = await open(tmp, 'wx', PRIVATE_FILE_MODE);
      try {
        const size = await writeBody(handle, body);
        await handle.sync();
        return size;
      } finally {
        await handle.close();
      }
    });
  }

  async putFile(key: string, source: string, options: PutOptions): Promise<{ size: number }> {
    const path = this.pathOf(key);
    return this.placeAtomically(path, options, async (tmp) => {
      await copyFile(source, tmp, constants.COPYFILE_EXCL);
      await chmod(tmp, PRIVATE_FILE_MODE);
      return (await stat(tmp)).size;
    });
  }

  async get(key: string, range?: ByteRange): Promise<StoredObject> {
    const path = this.pathOf(key);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) throw new StorageNotFoundError(key);
      throw error;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new StorageNotFoundError(key);
      const contentType = await this.contentTypeOf(path);
      const served = range ? clampRange(range, info.size) : undefined;
      const body = handle.createReadStream(served ? { start: served.start, end: served.end } : {});
      return { body, size: info.size, contentType, ...(served ? { range: served } : {}) };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const path = this.pathOf(key);
    try {
      const info = await stat(path);
      if (!info.isFile()) return undefined;
      return { size: info.size, contentType: await this.contentTypeOf(path) };
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return undefined;
      throw error;
    }
  }

  async download(key: string, target: string): Promise<void> {
    const { body } = await this.get(key);
    try {
      await pipeline(body, createWriteStream(target, { mode: PRIVATE_FILE_MODE }));
    } catch (error) {
      await unlinkIfPresent(target);
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    await unlinkIfPresent(path);
    await unlinkIfPresent(`${path}${SIDECAR_SUFFIX}`);
    await this.pruneEmptyParents(dirname(path));
  }

  async deletePrefix(prefix: string): Promise<number> {
    const dir = this.pathOf(normalizePrefix(prefix));
    try {
      if (!(await stat(dir)).isDirectory()) return 0;
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return 0;
      throw error;
    }
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    const count = entries.filter((entry) => entry.isFile() && !entry.name.includes(RESERVED_MARK)).length;
    await rm(dir, { recursive: true, force: true });
    await this.pruneEmptyParents(dirname(dir));
    return count;
  }

  async list(prefix: string): Promise<ListedObject[]> {
    const dir = this.pathOf(normalizePrefix(prefix));
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { recursive: true, withFileTypes: true });
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return [];
      throw error;
    }
    const files = entries
      .filter((entry) => entry.isFile() && !entry.name.includes(RESERVED_MARK))
      .map((entry) => join(entry.parentPath, entry.name));
    const listed = await Promise.all(files.map((path) => this.listedObjectAt(path)));
    return listed
      .filter((object): object is ListedObject => object !== undefined)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async ping(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true, mode: PRIVATE_DIR_MODE });
      await access(this.root, constants.R_OK | constants.W_OK);
    } catch (error) {
      throw new Error(`Local storage root ${this.root} is not a writable directory`, { cause: error });
    }
  }

  async close(): Promise<void> {}

  /** The file of a key, after validating the key (and checking again that it stays under the root). */
  private pathOf(key: string): string {
    assertValidKey(key);
    const path = join(this.root, ...key.split('/'));
    if (!path.startsWith(this.root + sep)) throw new Error(`Storage key "${key}" resolves outside the root`);
    return path;
  }

  /**
   * Writes the object through `write` into a temp file beside `path`, its sidecar likewise, then renames both
   * into place (sidecar first, so a reader who sees the new file sees its type); temp files never outlive a failure.
   */
  private async placeAtomically(
    path: string,
    options: PutOptions,
    write: (tmp: string) => Promise<number>,
  ): Promise<{ size: number }> {
    await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
    const tmp = tempPathBeside(path);
    const tmpSidecar = tempPathBeside(`${path}${SIDECAR_SUFFIX}`);
    try {
      const size = await this.writeTemp(path, tmp, write);
      const sidecar: Sidecar = { contentType: options.contentType || DEFAULT_CONTENT_TYPE };
      await writeFile(tmpSidecar, JSON.stringify(sidecar), { mode: PRIVATE_FILE_MODE, flag: 'wx' });
      await rename(tmpSidecar, `${path}${SIDECAR_SUFFIX}`);
      await rename(tmp, path);
      return { size };
    } finally {
      await unlinkIfPresent(tmp);
      await unlinkIfPresent(tmpSidecar);
    }
  }

  /**
   * Runs `write(tmp)`; when the directory vanished meanwhile (a concurrent delete pruned it while empty), creates
   * it again and retries once.
   */
  private async writeTemp(
    path: string,
    tmp: string,
    write: (tmp: string) => Promise<number>,
  ): Promise<number> {
    try {
      return await write(tmp);
    } catch (error) {
      if (!isErrno(error, 'ENOENT') || (await exists(dirname(path)))) throw error;
      await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
      return write(tmp);
    }
  }

  /** The key and size of a listed file, or undefined when it vanished meanwhile (a concurrent delete). */
  private async listedObjectAt(path: string): Promise<ListedObject | undefined> {
    try {
      const { size } = await stat(path);
      return { key: relative(this.root, path).split(sep).join('/'), size };
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return undefined;
      throw error;
    }
  }

  private async contentTypeOf(path: string): Promise<string> {
    try {
      const sidecar = JSON.parse(await readFile(`${path}${SIDECAR_SUFFIX}`, 'utf8')) as Partial<Sidecar>;
      return typeof sidecar.contentType === 'string' ? sidecar.contentType : DEFAULT_CONTENT_TYPE;
    } catch (error) {
      if (isErrno(error, 'ENOENT') || error instanceof SyntaxError) return DEFAULT_CONTENT_TYPE;
      throw error;
    }
  }

  /** Removes now-empty directories from `dir` up to (not including) the root; stops at the first non-empty one. */
  private async pruneEmptyParents(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(this.root + sep)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
      current = dirname(current);
    }
  }
}

/** Writes the whole body through the handle (awaiting each write, so a fast source never piles up); the byte count. */
async function writeBody(handle: FileHandle, body: Readable | Buffer): Promise<number> {
  if (Buffer.isBuffer(body)) {
    await handle.writeFile(body);
    return body.length;
  }
  let size = 0;
  for await (const chunk of body) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    await handle.write(bytes);
    size += bytes.length;
  }
  return size;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
  }
}
