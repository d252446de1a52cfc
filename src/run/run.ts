import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_PROFILE, ExperimentConfig, resolveConfig } from '../config';
import { writeFileAtomic } from '../io';
import { dataDir } from '../paths';

/**
 * A run directory is the researcher's workspace: config.json (the settings it was last opened with),
 * the keyed step results (oracle/, stolen/, copycats/: one folder per set of inputs, src/run/layout.ts),
 * executed notebooks, figures and TensorBoard event files. The notebooks in the lab and the headless
 * `npm run reproduce` open the same runs, and any notebook can be re-run alone.
 */
export interface Run {
  name: string;
  dir: string;
  config: ExperimentConfig;
  /** Absolute path of a file or folder inside the run. */
  path(...parts: string[]): string;
}

export interface OpenRunOptions {
  /** Profile name; default $COPYCAT_PROFILE, else the run directory's own profile, else DEFAULT_PROFILE. */
  profile?: string;
  /** Run directory; default $COPYCAT_RUN_DIR or data/runs/<profile>. */
  dir?: string;
  /** Overrides merged into the profile's config (a notebook's parameters cell). */
  overrides?: unknown;
}

/** Where a profile's run lives unless told otherwise: the lab and `reproduce` both use it. */
export function defaultRunDir(profile: string): string {
  return path.join(dataDir(), 'runs', profile);
}

/** The profile an existing run directory was last opened with (its config.json), if any. */
export function runProfile(dir: string): string | undefined {
  try {
    const p = (JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { profile?: unknown }).profile;
    return typeof p === 'string' ? p : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The profile a run is opened with: the one named, else $COPYCAT_PROFILE, else the run folder's own (so the
 * lab opening a reproduced run gets its profile), else DEFAULT_PROFILE. `npm run reproduce` uses the same rule.
 */
export function chooseProfile(named: string | undefined, runDir: string | undefined): string {
  return named ?? (process.env.COPYCAT_PROFILE || undefined) ?? (runDir ? runProfile(path.resolve(runDir)) : undefined) ?? DEFAULT_PROFILE;
}

export function openRun(opts: OpenRunOptions = {}): Run {
  const givenDir = opts.dir ?? process.env.COPYCAT_RUN_DIR;
  const profile = chooseProfile(opts.profile, givenDir);
  const config = resolveConfig(profile, opts.overrides);
  const dir = path.resolve(givenDir ?? defaultRunDir(config.profile));
  fs.mkdirSync(dir, { recursive: true });
  // The current settings only: every step result keeps the inputs it was made with in its own folder.
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  return { name: path.basename(dir), dir, config, path: (...parts: string[]) => path.join(dir, ...parts) };
}

/**
 * A run folder as it was last opened (its config.json as saved, nothing written): for tools that read
 * a run's results, such as `npm run runs` and the README figures.
 */
export function readRun(dir: string): Run {
  const abs = path.resolve(dir);
  const file = path.join(abs, 'config.json');
  if (!fs.existsSync(file)) throw new Error(`${abs} is not a run folder (no config.json)`);
  let config: ExperimentConfig;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8')) as ExperimentConfig;
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message})`);
  }
  return { name: path.basename(abs), dir: abs, config, path: (...parts: string[]) => path.join(abs, ...parts) };
}
