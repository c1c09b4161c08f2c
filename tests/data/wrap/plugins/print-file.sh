#!/bin/sh
# A batch-system plugin as the BDII runs it: prints its LDIF on stdout, chats on stderr.
echo "reading lrms snapshot" >&2
cat "$1"
