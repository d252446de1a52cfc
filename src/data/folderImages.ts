import * as fs from 'fs';
import * as path from 'path';
import { ImageListing, isClutter, looksLikeImage } from './imageEntries';

/** Every file under `root` (recursive, sorted, symlinked folders not followed); ids are relative paths. */
export function listFolderImages(root: string): ImageListing & { fingerprint: string } {
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch {
    throw new Error(`NPD folder source: ${root} does not exist`);
  }
  if (!st.isDirectory()) throw new Error(`NPD folder source: ${root} is not a directory (use { kind: 'zip', path } for a zip file)`);
  const entries: ImageListing['entries'] = [];
  const otherFiles: string[] = [];
  // Names, sizes and mtimes of every file: the cache key notices any added, removed or edited file.
  const fp: string[] = [];
  const walk = (dir: string, rel: string) => {
    const items = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const it of items) {
      const relPath = rel ? `${rel}/${it.name}` : it.name;
      if (isClutter(relPath)) continue;
      const full = path.join(dir, it.name);
      if (it.isDirectory()) {
        walk(full, relPath);
        continue;
      }
      let s: fs.Stats;
      try {
        s = fs.statSync(full);
      } catch {
        otherFiles.push(relPath); // dangling link
        continue;
      }
      if (!s.isFile()) continue;
      fp.push(`${relPath}\t${s.size}\t${s.mtimeMs}`);
      if (!looksLikeImage(it.name)) {
        otherFiles.push(relPath);
        continue;
      }
      entries.push({ id: relPath, bytes: s.size, read: () => fs.promises.readFile(full) });
    }
  };
  walk(root, '');
  return { entries, otherFiles, fingerprint: fp.join('\n'), close: async () => undefined };
}
