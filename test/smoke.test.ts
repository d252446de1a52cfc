import { strict as assert } from 'assert';
import { CIFAR10_CLASSES } from '../src/types';

describe('project skeleton', () => {
  it('knows the ten CIFAR-10 classes in the official order', () => {
    assert.equal(CIFAR10_CLASSES.length, 10);
    assert.equal(CIFAR10_CLASSES[3], 'cat');
  });
});
