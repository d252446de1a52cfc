/**
 * The API the notebooks import (compiled to build/src/index.js: tslab cannot import ../src/*.ts).
 * One module per concept of the paper; see docs/ for each.
 */
export * from './types';
export * from './paths';
export * from './config';
export * from './backend';
export * from './preprocess';
export * from './data/download';
export * from './data/cifar10';
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
export * from './report';
export * from './run';
export * from './steps/subset';
export * from './steps/oracleStep';
export * from './steps/stealStep';
export * from './steps/copycatStep';
export * from './steps/resultsStep';
export * from './plots';
export * from './imageGrid';
export * from './progress';
export * from './notebook';
export * from './steps/figures';
export * from './experiments/queryBudget';
export * from './experiments/defences';
export * from './experiments/trainLength';
export * from './experiments/distillation';
export * from './experiments/seedMembers';
export * from './experiments/experimentFigures';
export * from './copycatEnsemble';
export * from './steps/ensembleStep';
export * from './data/npd';
export * from './data/npdSources';
export * from './data/split';
