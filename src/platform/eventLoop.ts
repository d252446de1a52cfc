/**
 * Lets Node's event loop run once (timers, I/O, signal handlers). The native backend computes
 * synchronously (its tensors' data() resolves without I/O), so a training or prediction loop would never
 * reach the event loop: a notebook kernel's output messages (the progress bar, epoch lines) queue until the
 * cell ends, which froze JupyterLab's display and `npm run reproduce`'s terminal echo for a whole training.
 * One turn per batch costs microseconds.
 */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
