/**
 * `npm run runs -- [RUN_DIR ...]`: the variants each run holds (oracle, stolen sets, copycats), what each
 * changed against its profile's defaults and how it scored; `*` marks those the run's config.json uses.
 * `npm run runs -- gc RUN_DIR [--keep KEY,KEY] [--yes]`: removes the variants the config no longer uses
 * (without --yes it only lists them).
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { textTable } from '../src/display/notebook';
import { dataDir } from '../src/paths';
import { readRun } from '../src/run';
import { formatVariantRows, pruneVariants, variantRows } from '../src/steps/runVariants';

function runDirs(given: string[]): string[] {
  if (given.length) return given.map((d) => path.resolve(d));
  const root = path.join(dataDir(), 'runs');
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root).map((d) => path.join(root, d)).filter((d) => fs.existsSync(path.join(d, 'config.json')));
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { keep: { type: 'string' }, yes: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log('npm run runs -- [RUN_DIR ...] [--json]\nnpm run runs -- gc RUN_DIR [--keep KEY,KEY] [--yes]');
    return;
  }
  if (positionals[0] === 'gc') {
    if (positionals.length !== 2) throw new Error('usage: npm run runs -- gc RUN_DIR [--keep KEY,KEY] [--yes]');
    const run = readRun(positionals[1]);
    const keep = values.keep ? values.keep.split(',').map((k) => k.trim()).filter(Boolean) : [];
    const gone = pruneVariants(run, { keep, dryRun: !values.yes, log: (s) => console.log(s) });
    console.log(gone.length ? (values.yes ? `removed ${gone.length} variant(s)` : `${gone.length} variant(s) not used by ${run.dir}/config.json; add --yes to remove them`) : 'nothing to remove');
    return;
  }
  const dirs = runDirs(positionals);
  if (!dirs.length) console.log(`no runs under ${path.join(dataDir(), 'runs')}`);
  for (const dir of dirs) {
    const run = readRun(dir);
    const rows = variantRows(run);
    if (values.json) {
      console.log(JSON.stringify({ run: run.dir, profile: run.config.profile, variants: rows }));
      continue;
    }
    console.log(`\n${run.dir} (profile ${run.config.profile}; * = used by its config.json)`);
    console.log(rows.length ? textTable(formatVariantRows(rows)) : '(no variants)');
  }
}

try {
  main();
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
