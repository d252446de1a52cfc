import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../io';

/** JSON and JSON-lines files of a run: written atomically, read with errors that name the file. */

export function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

export function readJson<T>(file: string, what: string): T {
  if (!fs.existsSync(file)) throw new Error(`${what} not found: ${file} (run the earlier notebook/step first)`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new Error(`${what}: ${file} is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Pins the recipe a resumable experiment directory was started with: the first call writes `recipe` to
 * `file`, later calls compare against it. Returns '' when they match (or it was just written), else
 * `difference`'s account of what changed, for the caller's error message.
 */
export function pinRecipe<T>(file: string, recipe: T, what: string, difference: (there: T, now: T) => string): string {
  if (!fs.existsSync(file)) {
    writeJson(file, recipe);
    return '';
  }
  return difference(readJson<T>(file, what), recipe);
}

/**
 * Results of a resumable experiment, one JSON object per line (appended as each finishes, so a kill
 * loses at most the one in progress). A missing file is an empty list.
 */
export function readJsonLines<T>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l, i) => {
    try {
      return JSON.parse(l) as T;
    } catch (e) {
      throw new Error(`${file}:${i + 1} is not valid JSON (${(e as Error).message}); delete that line to recompute it`);
    }
  });
}

/** A user-given experiment name as a file or folder name (anything outside [A-Za-z0-9._-] becomes '_'). */
export function fileSafeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** Rewrites a whole JSON-lines file at once (atomically), e.g. after filling in a field old rows lack. */
export function writeJsonLines(file: string, values: unknown[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, values.map((v) => JSON.stringify(v) + '\n').join(''));
}

export function appendJsonLine(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(file, JSON.stringify(value) + '\n');
}
