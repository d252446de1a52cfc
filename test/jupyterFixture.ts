import * as fs from 'fs';
import * as path from 'path';

/** The project's Jupyter venv (`npm run lab:setup`) that the notebook-side tests run in. */
export const VENV = process.env.COPYCAT_VENV ?? path.join(path.resolve(__dirname, '..'), '.venv');

/**
 * Skips the suite (printing why) when the venv lacks `bin/<tool>`, or fails it when
 * COPYCAT_REQUIRE_JUPYTER=1 (CI), so a missing environment never passes silently there.
 */
export function requireVenvTool(ctx: Mocha.Context, tool: string, what: string): void {
  if (fs.existsSync(path.join(VENV, 'bin', tool))) return;
  const why = `no Jupyter venv at ${VENV} (run 'npm run lab:setup')`;
  if (process.env.COPYCAT_REQUIRE_JUPYTER === '1') throw new Error(`COPYCAT_REQUIRE_JUPYTER=1 but ${why}`);
  console.log(`      SKIPPED ${what}: ${why}`);
  ctx.skip();
}
