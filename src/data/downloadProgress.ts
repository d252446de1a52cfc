import { Progress, progress } from '../display/progress';

/**
 * An onProgress callback for downloadFile that shows bytes, rate and ETA through the kit's progress
 * reporter (one rewritten line in a notebook or terminal, sparse lines in a log).
 */
export function downloadProgress(label: string): (done: number, total: number) => void {
  let bar: Progress | undefined;
  let barTotal = -1;
  return (done, total) => {
    const mb = Math.max(1, Math.round(total / 1e6));
    if (!bar || barTotal !== mb) {
      bar?.finish();
      // The first call of a resumed download reports the bytes already on disk (downloadFile says so).
      bar = progress(mb, { label: `download ${label} (MB)`, unit: 'MB', initial: Math.min(mb, Math.round(done / 1e6)) });
      barTotal = mb;
    }
    bar.update(Math.round(done / 1e6));
    if (done >= total && total > 0) bar.finish();
  };
}
