/** Training: the loop (train.ts) and its parts (augmentation, checkpoints, schedule, ...). */
export * from './train';
