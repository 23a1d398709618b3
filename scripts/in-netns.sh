#!/usr/bin/env bash
# Runs a command in the fresh network namespace `unshare -rn` made: only a loopback interface,
# brought up here, so nothing the command starts can send a packet off this machine.
set -euo pipefail
ip link set lo up
exec "$@"
