#!/bin/sh
# Hangs with two grandchildren holding its stdout, one of which ignores SIGTERM.
# $1: a file that receives its own PID, then the grandchildren's.
echo $$ > "$1"
sleep 60 &
echo $! >> "$1"
(trap '' TERM; exec sleep 60) &
echo $! >> "$1"
printf 'dn: GlueCEUniqueID=ce01.example.org:8443/cream-pbs-long,mds-vo-name=resource,o=grid\nGlueCEStateFreeCPUs: 1'
exec sleep 60
