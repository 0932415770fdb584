#!/usr/bin/env bash
# Regenerate the protobuf modules from protocols/control.proto:
#   protocols/control_pb2.py(.pyi)          messages (the wire contract; no gRPC)
#   parties/transport/control_pb2_grpc.py   gRPC stubs and servicers (the transport edge)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-uv.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
uv run --frozen python -m grpc_tools.protoc -I . \
  --python_out=. --pyi_out=. --grpc_python_out="$tmp" protocols/control.proto
mv "$tmp/protocols/control_pb2_grpc.py" parties/transport/control_pb2_grpc.py
echo "regenerated protocols/control_pb2.py, protocols/control_pb2.pyi, parties/transport/control_pb2_grpc.py"
