#!/bin/sh
# A queue description in Latin-1: byte 0xe9 is not UTF-8.
printf 'dn: GlueCEUniqueID=ce01.example.org:8443/cream-pbs-long,mds-vo-name=resource,o=grid\n'
printf 'GlueCEStateStatus: Production\nGlueCEName: long file d\351faut\n'
