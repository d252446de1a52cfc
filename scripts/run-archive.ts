/**
 * Keeps a run's expensive results across machines (src/runArchive.ts):
 *
 *   npm run run-archive -- pack data/runs/full-1 data/reference/full-1      run -> archive folder
 *   npm run run-archive -- restore data/reference/full-1 data/runs/full-1   archive -> run directory
 *
 * `restore` checks every file's MD5 and never overwrites a file whose content differs.
 */
import { parseArgs } from 'util';
import { archiveRun, restoreRun } from '../src/run/archive';

function main(): void {
  const { positionals } = parseArgs({ allowPositionals: true, options: {} });
  const [what, from, to] = positionals;
  if (!['pack', 'restore'].includes(what) || !from || !to || positionals.length !== 3) {
    throw new Error(`usage: npm run run-archive -- pack RUN_DIR ARCHIVE_DIR | restore ARCHIVE_DIR RUN_DIR (got '${positionals.join(' ')}')`);
  }
  const log = (s: string) => console.log(s);
  if (what === 'pack') archiveRun(from, to, log);
  else restoreRun(from, to, log);
}

try {
  main();
} catch (e) {
  console.error((e as Error).message);
  process.exit(1);
}
