/**
 * Shared data shapes. Images stay uint8 in JS memory (NHWC, RGB) and become float tensors one batch at
 * a time: a float copy of 80k 32x32 images is ~1 GB and the wasm heap stops at 4 GB.
 */

/** A set of images, NHWC uint8 RGB, optionally with integer labels. */
export interface ImageSet {
  /** length n * height * width * 3, row-major NHWC, RGB. */
  images: Uint8Array;
  n: number;
  height: number;
  width: number;
  /** Class index per image (ground truth or stolen), when known. */
  labels?: Uint8Array;
  /** Optional soft targets, n * numClasses, row-major. */
  soft?: Float32Array;
  /** Optional stable identifier per image (file name inside a zip, CIFAR index...). */
  ids?: string[];
}

export const CIFAR10_CLASSES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
] as const;
