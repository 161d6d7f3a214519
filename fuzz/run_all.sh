#!/bin/sh
# Runs every fuzz target in turn for $SECS seconds (default 120), one process each, and keeps
# the log of each run in fuzz/logs/. Build first: cargo +nightly fuzz build -O -s none
set -u
SECS=${SECS:-120}
# The binaries cargo fuzz built: under $CARGO_TARGET_DIR if set, else fuzz/target.
B=${B:-${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release}
mkdir -p logs artifacts
for t in ${TARGETS:-whatsapp_parse telegram_update reference_parse understand dialogue_step fluent_render}; do
  mkdir -p corpus/$t artifacts/$t
  case $t in
    whatsapp_parse|telegram_update) len=16384 ;;
    dialogue_step) len=8192 ;;
    *) len=4096 ;;
  esac
  dict=""
  [ -f dict/$t.dict ] && dict="-dict=dict/$t.dict"
  $B/$t -max_total_time=$SECS -timeout=10 -rss_limit_mb=2048 -max_len=$len $dict \
    -print_final_stats=1 -artifact_prefix=artifacts/$t/ corpus/$t > logs/$t.log 2>&1
  echo "$t exit $?: $(grep -a -E '^#[0-9]+' logs/$t.log | tail -1)"
done
