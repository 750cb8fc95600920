# Compares our supervisorctl (RS) with Python's (PY) against one Python supervisord, ours
# talking JSON-RPC through jrpc_shim.py: python3 jrpc_shim.py unix:///tmp/ctlref/sock /tmp/ctlref/jsock &
# Last run: 69 commands, all identical except one whose restore step changed the state.
PY=/tmp/ref/bin/supervisorctl; RS=/tmp/ctlref/supervisorctl
n=0; bad=0
cmp1() { # cmd [restore]
  a=$($PY -c sup.conf $1 2>&1; echo "rc=$?"); [ -n "$2" ] && $PY -c sup.conf $2 >/dev/null 2>&1
  b=$($RS -s unix:///tmp/ctlref/jsock $1 2>&1; echo "rc=$?"); [ -n "$2" ] && $PY -c sup.conf $2 >/dev/null 2>&1
  n=$((n+1)); if [ "$a" != "$b" ]; then bad=$((bad+1)); echo "=== DIFF: $1"; diff <(echo "$a") <(echo "$b") | head -10; fi
}
for c in "status" "status sleeper" "status nosuch" "status grp:*" "status sleeper nosuch grp:* grp:zz" "status nosuch:*" "pid sleeper" "pid manual" "pid nosuch" "pid all" "start" "start sleeper" "start nosuch" "start nosuch:*" "start badcmd" "stop" "stop manual" "stop nosuch" "stop nosuch:*" "restart" "signal" "signal HUP" "signal FOO sleeper" "signal HUP manual" "signal HUP nosuch:*" "signal FOO multi:*" "tail" "tail sleeper" "tail sleeper stderr" "tail -5 sleeper" "tail sleeper foo" "tail -x sleeper" "tail -f" "tail a b c d" "tail nolog" "tail nosuch" "maintail -100" "maintail x" "clear" "clear nosuch" "avail" "avail x" "reread" "version" "version x" "help" "help tail" "help maintail" "help foo" "?" "foo bar" "quit" "fg" "fg a b" "fg nosuch" "fg manual" "shutdown x" "add" "update nosuch" "add sleeper" "remove sleeper" "open foo" "clear grp:*"; do cmp1 "$c"; done
cmp1 "start manual" "stop manual"
cmp1 "start grp:g2" "stop grp:g2"
cmp1 "stop grp:*" "start grp:*"
cmp1 "signal CONT grp:*"
cmp1 "restart sleeper"
cmp1 "start bad"
echo "compared $n, $bad differ"
