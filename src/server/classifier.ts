/** The operator's injection classifier from `inspection.classifier`, its secret headers resolved once at start. */
import { type ClassifierSettings, resolveHeaderSecret } from '../config/index.js';
import { httpClassifier } from '../inspect/index.js';

/** Builds the classifier; a header whose secret cannot be read is a start-up error naming the reference. */
export async function buildClassifier(
  settings: ClassifierSettings,
): Promise<ReturnType<typeof httpClassifier>> {
  const headers: Record<string, string> = {};
  for (const [name, ref] of Object.entries(settings.headers)) {
    headers[name] = await resolveHeaderSecret(ref);
  }
  return httpClassifier({
    url: settings.url,
    timeoutMs: settings.timeout,
    failMode: settings.failMode,
    headers,
  });
}
