# Shared by the curl scripts: settings from the environment, and helpers.
# Needs only curl and sed.
BASE_URL="${BASE_URL:-http://127.0.0.1:8000}"
EMAIL="${EMAIL:-ada@example.com}"
PASSWORD="${PASSWORD:-correct horse battery}"

# api ARGS...: curl that prints the body and fails on an HTTP error.
api() { curl -sS --fail-with-body "$@"; echo; }

# json_field NAME: the first string value of NAME in the JSON on stdin.
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# json_number NAME: the first number value of NAME in the JSON on stdin.
json_number() { sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" | head -n 1; }

# access_token: $TOKEN, or a fresh login as $EMAIL.
access_token() {
  if [ -n "${TOKEN:-}" ]; then echo "$TOKEN"; return; fi
  curl -sS --fail-with-body "$BASE_URL/token" \
    --data-urlencode "username=$EMAIL" --data-urlencode "password=$PASSWORD" | json_field access_token
}
