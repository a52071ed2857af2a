import path from 'node:path';
import { generateMedia, mediaComplete } from '../gen-media.mjs';
import { ROOT } from './origin.mjs';

/** Generate ./media (or outDir) if missing or incomplete; returns its absolute path. */
export function ensureMedia({ outDir = path.join(ROOT, 'media'), seconds = 60 } = {}) {
  if (!mediaComplete(outDir)) generateMedia({ outDir, seconds });
  return outDir;
}
