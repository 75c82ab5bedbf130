/**
 * A linear pre-check the detectors share: whether a text has a run of at least `min` token
 * characters (letters, digits, `+ / = _ . -`). Every encoded run and every credential format the
 * detectors know is such a run, so text without one (most prose) can skip those scans. One pass
 * over the UTF-16 units; a regex like /[A-Za-z0-9+/=_.-]{16}/ re-tries at every position and
 * cost ~0.8 ms per 64 KB of prose.
 */
const TOKEN = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_.-')
  TOKEN[c.charCodeAt(0)] = 1;

/** Whether `text` holds at least `min` consecutive token characters. */
export function hasTokenRun(text: string, min: number): boolean {
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 128 && TOKEN[c] === 1) {
      if (++run >= min) return true;
    } else run = 0;
  }
  return false;
}
