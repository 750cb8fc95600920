# How python-4.3.0.jsonl was recorded (supervisor 4.3.0, CPython 3.11, in /tmp/ctlref):
#   /tmp/ref/bin/supervisord -c sup.conf &        # sup.conf is beside this file
#   then the three batches below, in this order, each line one supervisorctl run through
#   capture.py (real supervisorctl.main with its XML-RPC transport wrapped to log every
#   call and its result/fault/errno, plus exact stdout bytes and the exit code).
# Between batch 1 and 2 the config was edited: changeme's command became
# `/bin/sleep 100001`, [program:goner] was deleted, and [program:newone] (autostart) and
# [program:newtwo] (autostart=false) were appended. Batch 2 ends with `reload`; batch 3
# ran while the daemon was restarting/shutting down, and then with it gone.
# `tail -3 sleeper` (HTTP 500 from Python's strict UTF-8 decode, a bug we do not copy)
# was dropped from the file.

# batch 1
cap() { /tmp/ref/bin/python3 capture.py -c sup.conf "$@" >> python-4.3.0.jsonl; }
cap status
cap status sleeper
cap status nosuch
cap status grp:*
cap status grp:g1
cap status sleeper nosuch grp:* grp:zz
cap status all
cap status nosuch:*
cap status multi:*
cap "status sleeper"
cap pid
cap pid sleeper
cap pid manual
cap pid nosuch
cap pid all
cap pid grp:*
cap pid sleeper manual
cap start
cap start sleeper
cap start nosuch
cap start grp:nosuch
cap start nosuch:*
cap start bad
cap start badcmd
cap start manual
cap start grp:*
cap start quick
cap start all
cap start nosuch manual
cap stop
cap stop manual
cap stop manual
cap stop nosuch
cap stop nosuch:*
cap stop grp:*
cap stop grp:g1
cap restart
cap restart sleeper
cap restart nosuch
cap restart grp:*
cap signal
cap signal HUP
cap signal HUP sleeper
cap signal FOO sleeper
cap signal HUP manual
cap signal HUP nosuch
cap signal HUP nosuch:*
cap signal CONT grp:*
cap signal FOO multi:*
cap signal CONT all
cap signal HUP grp:g2
cap tail
cap tail sleeper
cap tail sleeper stderr
cap tail sleeper STDERR
cap tail -5 sleeper
cap tail -3 sleeper
cap tail sleeper foo
cap tail -x sleeper
cap tail -f
cap tail a b c d
cap tail nolog
cap tail nosuch
cap tail -5 sleeper stderr
cap tail manual
cap maintail -100
cap maintail x
cap maintail -x
cap maintail a b
cap clear
cap clear quick
cap clear nosuch
cap clear quick nosuch
cap avail
cap avail x
cap reread
cap reread x
cap version
cap version x
cap help
for t in status start stop restart signal tail maintail pid clear avail reread update add remove shutdown reload version fg open quit exit help EOF foo; do cap help $t; done
cap "?"
cap "?status"
cap foo bar
cap "!ls"
cap EOF
cap quit
cap exit
cap ""
cap "status:foo"
cap open foo
cap fg
cap fg a b
cap fg nosuch
cap fg manual
cap shutdown x
cap reload x
cap add
cap remove
cap update nosuch

# batch 2
cap() { /tmp/ref/bin/python3 capture.py -c sup.conf "$@" >> python-4.3.0.jsonl; }
cap reread
cap avail
cap update changeme
cap update newone goner
cap status
cap update
cap update
cap update all
cap add newone
cap remove newone
cap stop newone
cap remove newone nosuch
cap remove newone
cap add newone nosuch
cap add newone
cap avail
cap clear all
cap maintail
cap reload

# batch 3 (after reload)
cap() { /tmp/ref/bin/python3 capture.py -c sup.conf "$@" >> python-4.3.0.jsonl; }
cap stop all
cap status
cap shutdown
cap shutdown
cap status
cap start manual
cap pid
cap tail sleeper
cap version
cap avail
cap reread
cap update
cap add x
cap remove x
cap reload
cap clear x
cap fg x
cap maintail
cap signal HUP x
cap stop x
cap restart x
