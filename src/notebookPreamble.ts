import type { ExperimentConfig } from './config';
import { BackendReport, formatBackendReport, initBackend } from './platform/backend';
import { openRun, OpenRunOptions, Run } from './run';

/**
 * The first code cell of every notebook: load the fastest backend and say which, open the run and say
 * where, and print the part of the config the notebook is about, so a result always shows what made it.
 */
export async function startNotebook(opts: OpenRunOptions & { show?: (config: ExperimentConfig) => unknown } = {}): Promise<{ run: Run; backend: BackendReport }> {
  const backend = await initBackend();
  console.log(formatBackendReport(backend));
  const run = openRun(opts);
  console.log(`run directory: ${run.dir} (profile ${run.config.profile})`);
  if (opts.show) console.log(JSON.stringify(opts.show(run.config), null, 2));
  return { run, backend };
}
