#!/usr/bin/env bash
# The TOTP second factor for $EMAIL, end to end: enrol, confirm with a code
# computed by oathtool (Debian's `oathtool` package) as an authenticator app
# would, see the password alone refused, log in with a code, and (unless
# KEEP=1) remove it again with a recovery code.
#   EMAIL=ada@example.com PASSWORD='correct horse battery' scripts/curl/mfa.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
token=$(access_token)
auth=(-H "authorization: Bearer $token" -H 'content-type: application/json')

enrolment=$(api "$BASE_URL/users/me/mfa/totp" "${auth[@]}" \
  -d "{\"current_password\": \"$PASSWORD\"}")
secret=$(echo "$enrolment" | json_field secret)
echo "secret $secret (scan otpauth_uri as a QR code in an app)" >&2

# The code the app shows now confirms the enrolment; the answer holds the
# recovery codes, shown this once.
codes=$(api "$BASE_URL/users/me/mfa/totp/confirm" "${auth[@]}" \
  -d "{\"code\": \"$(oathtool --totp -b "$secret")\"}")
echo "$codes"
recovery=$(echo "$codes" | sed -n 's/.*"recovery_codes":\["\([^"]*\)".*/\1/p')

# The password alone is now 403 mfa_required.
status=$(curl -sS -o /dev/null -w '%{http_code}' "$BASE_URL/token" \
  --data-urlencode "username=$EMAIL" --data-urlencode "password=$PASSWORD")
[ "$status" = 403 ] || { echo "password alone: $status, expected 403" >&2; exit 1; }

# A code is accepted once: the confirming one is used, so log in with the
# app's next code (one step of drift is allowed, so it works already).
next=$(oathtool --totp -b -N "$(date -u -d '+30 seconds' '+%Y-%m-%d %H:%M:%S UTC')" "$secret")
pair=$(curl -sS --fail-with-body "$BASE_URL/token" \
  --data-urlencode "username=$EMAIL" --data-urlencode "password=$PASSWORD" \
  --data-urlencode "otp=$next")
echo "$pair" | json_field token_type

if [ "${KEEP:-0}" != 1 ]; then
  token=$(echo "$pair" | json_field access_token)
  curl -sS --fail-with-body -X DELETE "$BASE_URL/users/me/mfa" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"current_password\": \"$PASSWORD\", \"code\": \"$recovery\"}"
  echo "second factor removed with recovery code $recovery" >&2
fi
