/**
 * Keys Warden creates for itself on first start (the audit checkpoint key, the
 * audit HMAC key): written once, 0600, never overwritten — two processes
 * starting at once both end up with the winner's key.
 */
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { resolveSecret } from '../config/secrets.js';
import type { AuditKeyRef } from '../config/types.js';
import { isWardenError } from '../errors.js';

/** Create `path` (0600, parent 0700) holding `content()`, unless it exists. */
async function createOnce(path: string, content: () => Promise<string> | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    // wx: fails when the file exists, so a racing process never overwrites the winner's key.
    fh = await open(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw e;
  }
  try {
    await fh.writeFile(await content());
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The secret behind `keyRef`; when `generate` is set (a default file in the data directory)
 * and the file does not exist, it is created first with `content()`. Messages name the
 * reference, never the key.
 */
export async function readOrCreateKey(
  keyRef: AuditKeyRef,
  content: () => Promise<string> | string,
): Promise<string> {
  if (!keyRef.generate || !('file' in keyRef.ref)) return resolveSecret(keyRef.ref);
  const file = keyRef.ref.file;
  try {
    await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await createOnce(file, content);
  }
  // The winner of a creation race may still be writing: its file reads empty for an instant.
  for (let i = 0; ; i++) {
    try {
      return await resolveSecret(keyRef.ref);
    } catch (e) {
      if (i >= 50 || !isWardenError(e, 'CONFIG_INVALID') || !e.message.includes('empty')) throw e;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
