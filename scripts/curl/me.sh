#!/usr/bin/env bash
# Shows the account behind $TOKEN (or logs in as $EMAIL first).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
api "$BASE_URL/users/me" -H "Authorization: Bearer $(access_token)"
