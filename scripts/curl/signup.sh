#!/usr/bin/env bash
# Creates the account $EMAIL with $PASSWORD (and $FULL_NAME); prints the user.
#   EMAIL=ada@example.com PASSWORD='correct horse battery' scripts/curl/signup.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
api "$BASE_URL/users/signup" -H 'content-type: application/json' \
  -d "{\"email\": \"$EMAIL\", \"password\": \"$PASSWORD\", \"full_name\": \"${FULL_NAME:-Ada Lovelace}\"}"
