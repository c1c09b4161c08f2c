#!/bin/sh
# Dies of a signal in the middle of its output.
printf 'dn: GlueCEUniqueID=ce01.example.org:8443/cream-pbs-long,mds-vo-name=resource,o=grid\n'
kill -KILL $$
