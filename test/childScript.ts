import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';
import { tempDir } from './tempDirs';

/**
 * A test's child script compiled once to plain JavaScript, with every repository file it imports
 * (relative imports, followed recursively). A test that starts the same child tens of times (the kill
 * test) then pays Node's start-up for each, not ts-node's: loading TypeScript and transpiling ~20 files
 * costs about a second per process on two busy cores. Bare imports resolve from the repository's
 * node_modules through NODE_PATH, since the compiled tree lives in a temporary directory.
 */

const ROOT = path.join(__dirname, '..');

function resolveTs(from: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(c)) return c;
  return undefined;
}

export function compileChild(entry: string): { file: string; env: NodeJS.ProcessEnv } {
  const out = tempDir('copycat-child-js-');
  const todo = [path.resolve(entry)];
  const done = new Set<string>();
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (done.has(file)) continue;
    done.add(file);
    const src = fs.readFileSync(file, 'utf8');
    for (const m of src.matchAll(/(?:from\s+|import\s+|require\()\s*'(\.{1,2}\/[^']+)'/g)) {
      const dep = resolveTs(file, m[1]);
      if (dep) todo.push(dep);
    }
    const js = ts.transpileModule(src, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
    const dest = path.join(out, path.relative(ROOT, file)).replace(/\.ts$/, '.js');
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, js);
  }
  const nodePath = [path.join(ROOT, 'node_modules'), process.env.NODE_PATH].filter(Boolean).join(path.delimiter);
  return { file: path.join(out, path.relative(ROOT, entry)).replace(/\.ts$/, '.js'), env: { ...process.env, NODE_PATH: nodePath } };
}
