#!/usr/bin/env bash
# Creates a task, lists open tasks, marks the task done, then deletes it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
auth="Authorization: Bearer $(access_token)"

echo "# create"
task=$(api "$BASE_URL/tasks" -H "$auth" -H 'content-type: application/json' \
  -d '{"title": "Buy milk", "description": "2 litres", "due_date": "2026-12-01"}')
echo "$task"
id=$(echo "$task" | json_number id)

echo "# list open tasks"
api "$BASE_URL/tasks?completed=false&limit=10" -H "$auth"

echo "# mark done"
api -X PATCH "$BASE_URL/tasks/$id" -H "$auth" -H 'content-type: application/json' -d '{"completed": true}'

echo "# delete"
api -X DELETE "$BASE_URL/tasks/$id" -H "$auth"
echo "deleted task $id"
