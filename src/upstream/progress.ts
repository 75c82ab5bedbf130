/** An SDK progress notification's fields, as Warden passes them on (absent ones left out). */
import type { UpstreamProgress } from './types.js';

export function progressOf(p: { progress: number; total?: number; message?: string }): UpstreamProgress {
  return {
    progress: p.progress,
    ...(p.total === undefined ? {} : { total: p.total }),
    ...(p.message === undefined ? {} : { message: p.message }),
  };
}
