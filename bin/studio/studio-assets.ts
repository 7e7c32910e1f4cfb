import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The studio's user interface: hand-written HTML, CSS and JavaScript modules
 * in `bin/studio/studio-ui/`, copied beside the built command line
 * (`dist/studio-ui/`) by the build, so the same relative path finds them from
 * the sources (tsx) and from the package. Nothing is fetched from a network.
 */
export const STUDIO_UI_DIR = fileURLToPath(new URL('./studio-ui/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** One file of the interface, held in memory. */
export interface StudioAsset {
  body: Buffer;
  contentType: string;
}

/**
 * Reads every file of the interface once, at start: requests are then served
 * by exact name from this map, so no request path ever reaches the file system.
 */
export async function loadStudioAssets(dir = STUDIO_UI_DIR): Promise<Map<string, StudioAsset>> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  } catch (error) {
    throw new Error(`the studio's interface is missing from ${dir} (a broken install?)`, { cause: error });
  }
  if (!names.includes('index.html')) throw new Error(`the studio's interface in ${dir} has no index.html`);
  const assets = new Map<string, StudioAsset>();
  for (const name of names) {
    const contentType = CONTENT_TYPES[extname(name)];
    // Only the kinds of file the interface is made of are served.
    if (contentType === undefined) continue;
    assets.set(name, { body: await readFile(join(dir, name)), contentType });
  }
  return assets;
}
