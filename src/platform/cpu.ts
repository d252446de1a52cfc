/**
 * What the CPU is, from Linux's /proc/cpuinfo: kept apart from backend.ts so tools that only name the
 * machine (run-archive) do not load TensorFlow.js.
 */
import * as fs from 'fs';

/** /proc/cpuinfo, or undefined off Linux. */
export function readCpuInfo(): string | undefined {
  try {
    return fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Whether oneDNN's bf16 fpmath mode takes effect on this CPU: it needs AMX. AVX512-BF16 alone is not
 * enough: on an AMD EPYC with avx512_bf16 and no AMX (2026-12-04) a bf16-mode convolution gave float32's
 * exact result and trained no faster (docs/experiments.md).
 */
export function cpuHasAmxBf16(cpuinfo: string | undefined = readCpuInfo()): boolean {
  return cpuinfo !== undefined && /\bamx_bf16\b/.test(cpuinfo);
}
