#!/bin/sh
# A command source in the "json" format: a token and when it expires (Unix seconds).
printf '{"token": "%s", "expires_at": %s}\n' "$1" "$(( $(date +%s) + 3600 ))"
