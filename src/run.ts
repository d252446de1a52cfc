import * as fs from 'fs';
import * as path from 'path';
import { ExperimentConfig, resolveConfig } from './config';
import { writeFileAtomic } from './io';
import { dataDir } from './paths';

/**
 * A run directory keeps everything one experiment produced: config.json, oracle/, stolen/, copycats/,
 * figures/ and the results table. Each notebook opens the same run and reads what the earlier ones
 * wrote, so any notebook can be re-run alone.
 */
export interface Run {
  name: string;
  dir: string;
  config: ExperimentConfig;
  /** Absolute path of a file or folder inside the run. */
  path(...parts: string[]): string;
}

export interface OpenRunOptions {
  /** Profile name; default $COPYCAT_PROFILE or 'quick'. */
  profile?: string;
  /** Run directory; default $COPYCAT_RUN_DIR or data/runs/<profile>. */
  dir?: string;
  /** Overrides merged into the profile's config (a notebook's parameters cell). */
  overrides?: unknown;
}

export function openRun(opts: OpenRunOptions = {}): Run {
  const config = resolveConfig(opts.profile ?? process.env.COPYCAT_PROFILE ?? 'quick', opts.overrides);
  const dir = path.resolve(opts.dir ?? process.env.COPYCAT_RUN_DIR ?? path.join(dataDir(), 'runs', config.profile));
  fs.mkdirSync(dir, { recursive: true });
  const cfgFile = path.join(dir, 'config.json');
  const text = JSON.stringify(config, null, 2) + '\n';
  // Keep the previous settings when a notebook changes them, so earlier artefacts stay explainable.
  if (fs.existsSync(cfgFile) && fs.readFileSync(cfgFile, 'utf8') !== text) {
    fs.copyFileSync(cfgFile, path.join(dir, `config.prev-${Date.now()}.json`));
  }
  writeFileAtomic(cfgFile, text);
  return { name: path.basename(dir), dir, config, path: (...parts: string[]) => path.join(dir, ...parts) };
}

export function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
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

export function readJson<T>(file: string, what: string): T {
  if (!fs.existsSync(file)) throw new Error(`${what} not found: ${file} (run the earlier notebook/step first)`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new Error(`${what}: ${file} is not valid JSON (${(e as Error).message})`);
  }
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
