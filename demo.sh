#!/usr/bin/env bash
# Run the Safehouse demo on a synthetic city: ./demo.sh [--rows N] [--json PATH]
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-uv.sh
exec uv run --frozen safehouse demo "$@"
