#!/usr/bin/env bash
# Logs out the session of $TOKEN (or of a fresh login), then shows that the
# token no longer works. With ALL=1, logs out every session of the user.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
token=$(access_token)
path=/logout
[ "${ALL:-0}" = 1 ] && path=/logout/all
api -X POST "$BASE_URL$path" -H "Authorization: Bearer $token"
echo "logged out; the token now gets:"
status=$(curl -sS -o /dev/stderr -w '%{http_code}' "$BASE_URL/users/me" -H "Authorization: Bearer $token")
echo
[ "$status" = 401 ] || { echo "expected 401, got $status" >&2; exit 1; }
