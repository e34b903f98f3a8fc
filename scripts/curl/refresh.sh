#!/usr/bin/env bash
# Trades $REFRESH_TOKEN (or a fresh login's) for a new pair; the old one is retired.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
refresh="${REFRESH_TOKEN:-$(PAIR=1 "$(dirname "$0")/login.sh" | json_field refresh_token)}"
api "$BASE_URL/refresh" -H 'content-type: application/json' -d "{\"refresh_token\": \"$refresh\"}"
