#!/usr/bin/env bash
set -u
cd /work/main
export COPYCAT_MIRROR_DIR=/work/shared/datasets
run() { # name overrides
  local d=data/runs/$1
  mkdir -p $d && cp -r data/runs/full-1/oracle $d/
  echo "=== $1 $(date)"
  COPYCAT_OVERRIDES="$2" /usr/bin/time -v npm run experiment -- pipeline --profile full --run-dir $d --sets NPD-SL > nbexp/$1.log 2>&1
  echo "rc $? $(date)"
}
run full-augp03 '{"copycat":{"train":{"augmentation":{"probability":0.3}}}}'
echo "=== done $(date)"
