#!/usr/bin/env bash
# Scale-out demo on one machine, as root, from anywhere:
#   scripts/cluster-demo.sh            # BENCH=1 scripts/cluster-demo.sh adds a wrk run
# Starts three aescored processes sharing one model file and nginx in front of them, all on
# 127.0.0.1 (free ports picked at start), configured from config/nginx/aescore-upstream.conf.
# Then: scores through nginx (and shows which replica answered), retrains on the trainer
# through nginx, and shows every replica converge to the new model_id. Everything started
# here is stopped on exit (trap), and the scratch directory removed (KEEP=1 keeps it).
#
# Arrangement: one `role = trainer` plus two `role = replica`, all `watch_model = yes`.
# This keeps the HTTP contract whole behind the balancer (POST /retrain still works, nginx
# routes it to the trainer) and is what a small host deployment looks like. The other
# arrangement, every process a replica and an offline `aescore train --out` job writing
# the file, is the Kubernetes one (config/kubernetes/train-job.yaml); the replicas follow
# the file the same way in both.
#
# BENCH=1 also measures, with wrk (installed if missing), scoring throughput of the three
# replicas through nginx against one replica directly: same request, same connections,
# same duration (BENCH_SECONDS, default 10; BENCH_CONNECTIONS, default 32).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

packages=("${AE_BUILD_PACKAGES[@]}" nginx curl python3)
[ "${BENCH:-0}" = 1 ] && packages+=(wrk)
ae_install "${packages[@]}"
if [ -f build/meson-private/coredata.dat ]; then
    ae_build build --buildtype=release
else
    ae_build build --buildtype=release -Dtests=false
fi

# nginx's workers run as nobody when started by root: the scratch tree must be traversable.
dir="$(mktemp -d /tmp/aescore-cluster.XXXXXX)"
chmod 755 "$dir"
mkdir -p "$dir/models" "$dir/nginx"
pids=()

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then
        ae_say "kept $dir (logs: $dir/*.log)"
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# One record of the sample (label column dropped) as the /score body.
python3 - "$AE_ROOT/data/credit_default_sample.csv" >"$dir/score.json" <<'EOF'
import csv, json, sys
rows = csv.DictReader(open(sys.argv[1]))
row = next(rows)
row.pop("label", None)
print(json.dumps({"id": "demo-1", "features": {k: float(v) for k, v in row.items()}}))
EOF

model="$dir/models/model.aes"
ae_say "training the first model into $model (offline, aescore train --out is atomic)"
build/src/aescore train --data data/credit_default_sample.csv --out "$model" --quiet \
    --epochs 20 --ensemble 1

ports=()
for i in 0 1 2; do
    ports+=("$(free_port)")
    role=replica
    [ "$i" = 0 ] && role=trainer
    cat >"$dir/replica$i.conf" <<EOF
listen = 127.0.0.1:${ports[$i]}
model = $model
role = $role
watch_model = yes
EOF
    build/src/aescored --config "$dir/replica$i.conf" 2>"$dir/replica$i.log" &
    pids+=("$!")
done
for i in 0 1 2; do
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:${ports[$i]}/health" >/dev/null && break
        sleep 0.1
    done
    curl -fs "http://127.0.0.1:${ports[$i]}/health" >/dev/null ||
        ae_die "replica $i did not become ready; see $dir/replica$i.log"
done
ae_say "replicas: trainer 127.0.0.1:${ports[0]}, replicas 127.0.0.1:${ports[1]} 127.0.0.1:${ports[2]}"

# The shipped template, with its marked lines pointed at the real addresses.
lb_port="$(free_port)"
awk -v p0="${ports[0]}" -v p1="${ports[1]}" -v p2="${ports[2]}" -v lb="$lb_port" '
    /# @replica$/ { for (i = 0; i < 3; i++) { l = $0; sub(/127\.0\.0\.1:[0-9]+/, "127.0.0.1:" (i == 0 ? p0 : i == 1 ? p1 : p2), l); print l }; next }
    /# @trainer$/ { sub(/127\.0\.0\.1:[0-9]+/, "127.0.0.1:" p0) }
    /# @listen$/  { sub(/127\.0\.0\.1:[0-9]+/, "127.0.0.1:" lb) }
    { print }' config/nginx/aescore-upstream.conf >"$dir/nginx/aescore.conf"
cat >"$dir/nginx/nginx.conf" <<'EOF'
# Scratch main config: private pid, log and temp paths; the upstream file does the work.
worker_processes 2;
daemon off;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp_body;
    proxy_temp_path tmp_proxy;
    fastcgi_temp_path tmp_fastcgi;
    uwsgi_temp_path tmp_uwsgi;
    scgi_temp_path tmp_scgi;
    include aescore.conf;
}
EOF
nginx -p "$dir/nginx/" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" &
pids+=("$!")
lb="http://127.0.0.1:$lb_port"
for _ in $(seq 100); do
    curl -fs "$lb/health/live" >/dev/null && break
    sleep 0.1
done
ae_say "nginx on $lb"

ae_say "scoring through nginx (X-Aescore-Upstream names the replica that answered):"
for _ in 1 2 3 4 5 6; do
    curl -s -D - -o "$dir/last-score.json" -H 'Content-Type: application/json' \
        --data-binary @"$dir/score.json" "$lb/score" | tr -d '\r' | grep -i '^x-aescore-upstream' |
        sed 's/^/    /'
done
printf '    last answer: %s\n' "$(cat "$dir/last-score.json")"

ae_say "a replica refuses to train (nginx sends /retrain to the trainer instead):"
printf '    %s\n' "$(curl -s -X POST -H 'Content-Type: application/json' -d '{}' \
    "http://127.0.0.1:${ports[1]}/retrain")"

model_id() {
    curl -fs "http://127.0.0.1:$1/health" | python3 -c 'import json, sys; print(json.load(sys.stdin)["model_id"])'
}
old="$(model_id "${ports[0]}")"
ae_say "every replica serves $old; retraining on the trainer through nginx"
curl -fs -X POST -H 'Content-Type: text/csv' --data-binary @data/credit_default_sample.csv \
    "$lb/retrain?epochs=10&ensemble=1&seed=7" | sed 's/^/    /'
echo
while curl -fs "$lb/retrain" | grep -q '"state":"running"'; do
    sleep 0.05
done
curl -fs "$lb/retrain" | python3 -c 'import json, sys; s = json.load(sys.stdin); print("    job %s %s" % (s["job_id"], s["state"]))'
new="$(model_id "${ports[0]}")"
[ "$new" != "$old" ] || ae_die "the trainer still serves $old"
# The rename that landed the file set its ctime: convergence is measured from there.
landed="$(python3 -c 'import os, sys; print(os.stat(sys.argv[1]).st_ctime_ns / 1e9)' "$model")"
for i in 0 1 2; do
    for _ in $(seq 400); do
        [ "$(model_id "${ports[$i]}")" = "$new" ] && break
        sleep 0.005
    done
    id="$(model_id "${ports[$i]}")"
    [ "$id" = "$new" ] || ae_die "replica $i still serves $id"
    printf '    replica %d (127.0.0.1:%s) serves %s (checked %.0f ms after the file landed)\n' \
        "$i" "${ports[$i]}" "$id" "$(python3 -c "import time; print((time.time() - $landed) * 1000)")"
done

if [ "${BENCH:-0}" = 1 ]; then
    secs="${BENCH_SECONDS:-10}"
    conns="${BENCH_CONNECTIONS:-32}"
    cat >"$dir/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$dir/score.json")
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
    io.write(string.format("    non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF
    ae_say "wrk ${secs}s, $conns connections: one replica directly"
    wrk -t2 -c"$conns" -d"${secs}s" -s "$dir/post.lua" "http://127.0.0.1:${ports[1]}/score" |
        grep -E 'Requests/sec|Latency|non-2xx' | sed 's/^ */    /'
    ae_say "wrk ${secs}s, $conns connections: three replicas through nginx"
    wrk -t2 -c"$conns" -d"${secs}s" -s "$dir/post.lua" "$lb/score" |
        grep -E 'Requests/sec|Latency|non-2xx' | sed 's/^ */    /'
    ae_say "CPU cores on this machine: $(nproc) (replicas, nginx and wrk share them)"
fi
ae_say "done; stopping nginx and the replicas"
