#!/usr/bin/env bash
cd /work/main
while pgrep -f chain3.sh >/dev/null; do sleep 10; done
R=data/runs
M="$R/full-1/copycats/NPD-SL/model,$R/full-augp05/copycats/NPD-SL/model,$R/full-augp05-e24/copycats/NPD-SL/model,$R/full-mixup04-noaug/copycats/NPD-SL/model"
time npm run -s experiment -- ensemble --profile full --run-dir $R/full-1 --models $M --flip --name all4-flip 2>&1 | grep -v "^I0000\|^To enable\|WARNING"
M3="$R/full-1/copycats/NPD-SL/model,$R/full-augp05/copycats/NPD-SL/model,$R/full-augp05-e24/copycats/NPD-SL/model"
time npm run -s experiment -- ensemble --profile full --run-dir $R/full-1 --models $M3 --flip --name aug3-flip 2>&1 | grep -v "^I0000\|^To enable\|WARNING"
