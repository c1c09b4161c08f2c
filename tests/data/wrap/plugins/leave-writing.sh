#!/bin/sh
# Exits 0 at once, leaving a process in a session of its own that prints an entry slowly, line by
# line, then keeps stdout open. $1: a file that receives that process's PID.
setsid sh -c 'echo $$ > "$1"
printf "dn: GlueCEUniqueID=ce01.example.org:8443/cream-pbs-long,mds-vo-name=resource,o=grid\n"
sleep 0.7; printf "GlueCEStateFreeCPUs: 1\n"
sleep 0.7; printf "GlueCEStateStatus: Production\n"
exec sleep 30' sh "$1" &
exit 0
