#!/bin/sh
# Prints an entry and exits 0, leaving behind a process in a session of its own that holds its stdout.
# $1: a file that receives that process's PID.
printf 'dn: GlueCEUniqueID=ce01.example.org:8443/cream-pbs-long,mds-vo-name=resource,o=grid\nGlueCEStateStatus: Production\n'
setsid sleep 30 &
echo $! > "$1"
exit 0
