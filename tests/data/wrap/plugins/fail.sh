#!/bin/sh
# Prints half an entry, then gives up, as a plugin does when the batch server stops answering.
printf 'dn: GlueCEUniqueID=ce01.example.org:8443/cream-pbs-long,mds-vo-name=resource,o=grid\n'
printf 'GlueCEStateFreeCPUs: 12\nGlueCEStateSta'
echo "qstat: cannot connect to server torque01.example.org (errno=111) Connection refused" >&2
exit 1
