import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { budgetPointRows, CITED_ROWS, copycatRows, perClassAgreementRows, resultsCsv, resultsMarkdown, ResultsTable, stolenSetRows, writeResults } from '../src/report';
import { tempDir } from './tempDirs';

const table: ResultsTable = {
  run: 't1', profile: 'smoke', backend: 'cpu', createdAt: '2026-01-01T00:00:00Z',
  rows: [
    { model: 'Oracle', architecture: 'vgg-small', trainData: 'CIFAR-10 train', queries: null, accuracy: 0.8, microAverage: 0.8, macroAverage: 0.81, agreement: null, performanceOverTarget: null, testImages: 100, computed: true },
    { model: 'Copycat NPD-SL', architecture: 'vgg-small', trainData: 'NPD, "stolen", labels', queries: 500, accuracy: 0.4, microAverage: 0.4, macroAverage: 0.405, agreement: 0.45, performanceOverTarget: 0.5, testImages: 100, computed: true },
  ],
  cited: CITED_ROWS,
};

describe('results table', () => {
  it('renders computed rows with percentages and keeps cited rows under their own heading', () => {
    const md = resultsMarkdown(table);
    assert.match(md, /\| Oracle \| vgg-small \| CIFAR-10 train \| - \| 80\.00 % \| 0\.8000 \| 0\.8100 \| - \| - \|/);
    assert.match(md, /\| Copycat NPD-SL .* 500 \| 40\.00 % .* 45\.00 % \| 50\.00 % \|/);
    const citedAt = md.indexOf('NOT computed here');
    assert.ok(citedAt > md.indexOf('Copycat NPD-SL'));
    assert.ok(md.indexOf('Seed replication') > citedAt);
    assert.doesNotMatch(md, /Stages:/, 'no stage line without stage times');
    assert.match(resultsMarkdown({ ...table, stages: [{ name: '01_oracle', seconds: 1290 }, { name: '03_copycat', seconds: 1800 }] }), /Stages: 01_oracle 21\.5 min, 03_copycat 30\.0 min\./);
  });

  it('quotes CSV cells that contain commas or quotes', () => {
    const csv = resultsCsv(table);
    assert.ok(csv.includes('"NPD, ""stolen"", labels"'));
    assert.equal(csv.trim().split('\n').length, 1 + table.rows.length + table.cited.length);
  });

  it('writes md, csv and json that read back', () => {
    const dir = tempDir('report-');
    const files = writeResults(dir, table);
    assert.deepEqual(JSON.parse(fs.readFileSync(files.json, 'utf8')).rows[1].queries, 500);
    assert.ok(fs.readFileSync(files.md, 'utf8').startsWith('# Results'));
    assert.ok(!fs.existsSync(files.csv + '.tmp'));
  });

  it('gives the notebooks their table rows, formatted once', () => {
    const metrics = { n: 10000, accuracy: 0.8636, macroAverage: 0.86401, microAverage: 0.8636, macroPrecision: 0.86, macroRecall: 0.86, classNames: [], perClass: [], confusion: [] };
    assert.deepEqual(copycatRows([{ set: 'NPD-SL', trainImages: 80000, queries: 79987, metrics, agreement: 0.9, performanceOverTarget: 0.95413, wallSeconds: 90 }]), [{
      copycat: 'NPD-SL', images: 80000, queries: 79987, accuracy: '86.36 %', 'macro F1': '0.8640', agreement: '90.00 %', 'perf. over target': '95.41 %', 'unseen NPD agreement': '', minutes: '1.5',
    }]);
    assert.equal(copycatRows([{ set: 'NPD-SL', trainImages: 1, queries: 1, metrics, agreement: 0.9, performanceOverTarget: 0.9, wallSeconds: 60, unseenNpd: { agreement: 0.7123 } }])[0]['unseen NPD agreement'], '71.23 %');
    assert.deepEqual(budgetPointRows([{
      budget: 20000, method: 'both', selection: 'entropy', queries: 20000, costUsd: 20, epochs: 48, accuracy: 0.8, macroAverage: 0.79991, agreement: 0.85,
      performanceOverTarget: 0.88, unseenNpdAgreement: null, poolImages: 78000, wallSeconds: 1800,
    }]), [{
      budget: 20000, method: 'both (entropy)', 'paid queries': 20000, 'cost (US$)': '20.00', epochs: 48, 'pool images': 78000, accuracy: '80.00 %',
      'macro F1': '0.7999', agreement: '85.00 %', 'perf. over target': '88.00 %', 'unseen NPD agreement': '', 'train min': '30.0',
    }]);
    assert.deepEqual(stolenSetRows({ 'PD-SL': { n: 500, queries: 500, costUsd: 0.5, histogram: { maxOverMin: Infinity } } }),
      [{ set: 'PD-SL', images: 500, queries: 500, 'cost (US$)': '0.50', 'most/least frequent class': 'Infinity' }]);
    assert.deepEqual(perClassAgreementRows([0, 0, 1], [{ set: 'NPD-SL', testPredictions: [0, 1, 1] }], ['a', 'b', 'c']),
      [{ class: 'a', 'NPD-SL': '50.0 %' }, { class: 'b', 'NPD-SL': '100.0 %' }, { class: 'c', 'NPD-SL': '-' }]);
  });
});
