#!/usr/bin/env bash
# Logs in as $EMAIL (OAuth2 password flow, form data) and prints the access token:
#   TOKEN=$(scripts/curl/login.sh)
# With PAIR=1 it prints the whole token pair instead.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
pair=$(curl -sS --fail-with-body "$BASE_URL/token" \
  --data-urlencode "username=$EMAIL" --data-urlencode "password=$PASSWORD")
if [ "${PAIR:-0}" = 1 ]; then echo "$pair"; else echo "$pair" | json_field access_token; fi
