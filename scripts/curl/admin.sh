#!/usr/bin/env bash
# As the admin $ADMIN_EMAIL: lists users, promotes $EMAIL to manager, disables
# and re-enables them, and shows the latest audit events.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
token=$(EMAIL="${ADMIN_EMAIL:-admin@taskgate.local}" PASSWORD="${ADMIN_PASSWORD:?set ADMIN_PASSWORD}" access_token)
auth="Authorization: Bearer $token"

echo "# users"
api "$BASE_URL/admin/users?limit=20" -H "$auth"

id=$(curl -sS --fail-with-body -G "$BASE_URL/admin/users" --data-urlencode "q=$EMAIL" -H "$auth" | json_number id)
[ -n "$id" ] || { echo "no user $EMAIL" >&2; exit 1; }

echo "# promote $EMAIL to manager"
api -X PATCH "$BASE_URL/admin/users/$id" -H "$auth" -H 'content-type: application/json' -d '{"role": "manager"}'

echo "# disable (ends their sessions), then enable again"
api -X PATCH "$BASE_URL/admin/users/$id" -H "$auth" -H 'content-type: application/json' -d '{"disabled": true}'
api -X PATCH "$BASE_URL/admin/users/$id" -H "$auth" -H 'content-type: application/json' -d '{"disabled": false}'

echo "# latest audit events"
api "$BASE_URL/admin/audit?limit=5" -H "$auth"
