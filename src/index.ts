/**
 * The API the notebooks import (compiled to build/src/index.js: tslab cannot import ../src/*.ts).
 * One module per concept of the paper; see docs/ for each.
 */
export * from './types';
export * from './paths';
export * from './config';
export * from './preprocess';
export * from './data/download';
export * from './data/cifar10';
export * from './data/npd';
export * from './data/npdSources';
export * from './data/split';
export * from './data/subset';
export * from './data/pool';
export * from './models';
export * from './train';
export * from './io';
export * from './metrics';
export * from './evaluate';
export * from './oracle/types';
export * from './oracle/answers';
export * from './oracle/budget';
export * from './oracle/local';
export * from './oracle/client';
export * from './oracle/server';
export * from './stolenLabels';
export * from './copycatEnsemble';
export * from './report';
export * from './notebookPreamble';
export * from './run';
export * from './steps/inputs';
export * from './steps/variants';
export * from './steps/runVariants';
export * from './steps/oracleStep';
export * from './steps/stealStep';
// steal's summary type would clash with the steal step's: the outside-API command is exported by name.
export { steal, loadStolenSetWithImages, parseOracleSpec, parseSourceSpec } from './steal';
export type { OutsideStolenSet, StealOptions } from './steal';
export * from './steps/copycatStep';
export * from './steps/activeStealing';
export * from './steps/unseenNpd';
export * from './querySelection';
export * from './steps/resultsStep';
export * from './experiments/queryBudget';
export * from './experiments/budgetMethods';
export * from './experiments/defences';
export * from './experiments/detection';
export * from './experiments/ownershipVerification';
export * from './defender/ownership';
export * from './defender/prada';
export * from './defender/monitor';
export * from './experiments/trainLength';
export * from './experiments/distillation';
export * from './experiments/seedMembers';
export * from './experiments/ensembleStep';
// The wings: what the attack needs but is not the attack.
export * from './platform/backend';
export * from './display/notebook';
export * from './display/progress';
export * from './display/imageGrid';
export * from './display/plotly';
export * from './display/charts';
