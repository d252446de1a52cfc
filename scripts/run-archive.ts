// Keeps a run's expensive results across machines (src/run/archive.ts):
//
//   npm run run-archive -- pack data/runs/full-1 data/reference/full-1      run -> archive folder
//   npm run run-archive -- pack RUN ARCHIVE --exclude 'stolen/answers-*'    ... leaving out what matches
//   npm run run-archive -- restore data/reference/full-1 data/runs/full-1   archive -> run directory
//   npm run run-archive -- slim data/reference/full-1 --drop 'experiments/members/**/model/*' [--commit REV]
//
// `restore` checks every file's MD5 and never overwrites a file whose content differs; files an archive
// keeps in git history only (`slim`) are read from the commit its archive.json names.
// `slim` takes the files matching a --drop pattern (run-relative; * within a folder name, ** across
// folders) out of the folder once git holds them at REV (default HEAD, which must have them unchanged);
// commit the deletions afterwards.
// (line comments: a glob with ** and / would end a block comment)
import { spawnSync } from 'child_process';
import { parseArgs } from 'util';
import { archiveRun, restoreRun, slimArchive } from '../src/run/archive';

const USAGE = 'usage: npm run run-archive -- pack RUN_DIR ARCHIVE_DIR [--exclude GLOB[,GLOB]] | restore ARCHIVE_DIR RUN_DIR | slim ARCHIVE_DIR --drop GLOB[,GLOB] [--commit REV]';

// A glob as a RegExp over whole run-relative paths: * stays inside a folder name, ** crosses folders.
function globRegExp(glob: string): RegExp {
  const body = glob.split('**').map((part) => part.split('*').map((t) => t.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')).join('.*');
  return new RegExp(`^${body}$`);
}

function main(): void {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { drop: { type: 'string' }, commit: { type: 'string' }, exclude: { type: 'string' } } });
  const [what, from, to] = positionals;
  const log = (s: string) => console.log(s);
  if (what === 'slim' && from && positionals.length === 2) {
    if (!values.drop) throw new Error(`slim: --drop is required (run-relative patterns of the files that leave the tree, e.g. 'experiments/members/**/model/*')\n${USAGE}`);
    const drop = values.drop.split(',').map((p) => globRegExp(p.trim())).filter((r) => r.source !== '^$');
    const rev = spawnSync('git', ['rev-parse', values.commit ?? 'HEAD'], { encoding: 'utf8' });
    if (rev.status !== 0) throw new Error(`slim: git cannot name commit '${values.commit ?? 'HEAD'}': ${rev.stderr.trim()}`);
    slimArchive(from, (rel) => !drop.some((r) => r.test(rel)), rev.stdout.trim(), log);
    return;
  }
  if (!['pack', 'restore'].includes(what) || !from || !to || positionals.length !== 3) {
    throw new Error(`${USAGE} (got '${positionals.join(' ')}')`);
  }
  const exclude = (values.exclude ?? '').split(',').map((p) => p.trim()).filter(Boolean).map(globRegExp);
  if (what === 'pack') archiveRun(from, to, log, (rel) => !exclude.some((r) => r.test(rel)));
  else restoreRun(from, to, log);
}

try {
  main();
} catch (e) {
  console.error((e as Error).message);
  process.exit(1);
}
