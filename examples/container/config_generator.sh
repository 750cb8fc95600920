#!/bin/sh
# A stand-in for the one-shot config generator: renders the proxy's config, then exits 0.
set -eu
out=${1:-/tmp/gateway/envoy.yaml}
mkdir -p "$(dirname "$out")"
cat > "$out.tmp" <<YAML
static_resources:
  listeners:
    - address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
  clusters:
    - name: brightstaff
      load_assignment: { endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9091 } } } } ] } ] }
YAML
mv "$out.tmp" "$out"
echo "[config_generator] wrote $out"
