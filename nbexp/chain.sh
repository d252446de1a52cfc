#!/usr/bin/env bash
# Sequential copycat runs after the oracle (never two trainings at once).
set -u
cd /work/main
export COPYCAT_MIRROR_DIR=/work/shared/datasets
while pgrep -f "experiment.ts oracle" >/dev/null; do sleep 20; done
echo "=== baseline $(date)"
/usr/bin/time -v npm run experiment -- pipeline --profile full --run-dir data/runs/full-1 --sets NPD-SL > nbexp/base.log 2>&1
run() { # name overrides
  local d=data/runs/$1
  mkdir -p $d && cp -r data/runs/full-1/oracle data/runs/full-1/stolen $d/ 2>/dev/null
  echo "=== $1 $(date)"
  COPYCAT_OVERRIDES="$2" /usr/bin/time -v npm run experiment -- pipeline --profile full --run-dir $d --sets NPD-SL > nbexp/$1.log 2>&1
}
run full-mixup04-noaug '{"copycat":{"train":{"mixup":0.4,"augmentation":{"crop":false,"flip":false}}}}'
run full-mixup04 '{"copycat":{"train":{"mixup":0.4}}}'
echo "=== done $(date)"
