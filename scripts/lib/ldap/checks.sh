# shellcheck shell=bash
# The checks a start of our slapd ends with (sourced by scripts/dev-ldap): what the
# gateway and its tests rely on, tried with OpenLDAP's own clients.

# verify: the checks the gateway and its tests rely on; fail on the first miss.
verify() {
    step "check the directory with ldapsearch" "$LOG"
    local out rc dn
    export LDAPTLS_CACERT="$TLS_DIR/ca.pem" LDAPTLS_REQCERT=demand
    local bind_svc=(-x -o nettimeout=5 -D "$SERVICE_DN" -y "$SERVICE_PW_FILE")
    local alice_dn="uid=$CHECK_USER,$PEOPLE_BASE"

    out="$(timeout 10 ldapsearch "${bind_svc[@]}" -LLL -H "$URL" -b "$PEOPLE_BASE" "(uid=$CHECK_USER)" dn 2>&1)" ||
        fail "service search for (uid=$CHECK_USER) failed: $out"
    grep -qixF "dn: $alice_dn" <<<"$out" || fail "service search for (uid=$CHECK_USER) did not find $alice_dn: $out"

    out="$(timeout 10 ldapsearch "${bind_svc[@]}" -LLL -H "$URL" -b "$GROUPS_BASE" \
        "(&(objectClass=posixGroup)(memberUid=$CHECK_USER))" cn 2>&1)" || fail "group search failed: $out"
    if ! grep -qx "cn: xray-team" <<<"$out" || ! grep -qx "cn: all-staff" <<<"$out"; then
        fail "group search for $CHECK_USER did not find xray-team and all-staff: $out"
    fi

    out="$(timeout 10 ldapwhoami -x -o nettimeout=5 -H "$URL" -D "$alice_dn" -w "$CHECK_PW" 2>&1)" ||
        fail "bind as $alice_dn failed: $out"
    rc=0
    out="$(timeout 10 ldapwhoami -x -o nettimeout=5 -H "$URL" -D "$alice_dn" -w "wrong-$CHECK_PW" 2>&1)" || rc=$?
    ((rc == 49)) || fail "bind with a wrong password gave exit $rc, not 49: $out"
    dn="uid=$CHECK_USER2,$PEOPLE_BASE"
    out="$(timeout 10 ldapwhoami -x -o nettimeout=5 -H "$URL" -D "$dn" -w "$CHECK_PW2" 2>&1)" ||
        fail "bind as $dn (password with special characters) failed: $out"

    # A DN with an empty password is refused (unauthenticated bind, 53).
    rc=0
    out="$(timeout 10 ldapwhoami -x -o nettimeout=5 -H "$URL" -D "$alice_dn" -w '' 2>&1)" || rc=$?
    ((rc != 0)) || fail "a bind as $alice_dn with an empty password succeeded: $out"
    # Anonymous sees nothing.
    out="$(timeout 10 ldapsearch -x -o nettimeout=5 -LLL -H "$URL" -b "$SUFFIX" '(objectClass=*)' dn 2>&1 || true)"
    ! grep -q '^dn:' <<<"$out" || fail "anonymous search returned entries: $(head -n3 <<<"$out")"
    # userPassword is for binds only, also for the service account.
    out="$(timeout 10 ldapsearch "${bind_svc[@]}" -LLL -H "$URL" -b "$alice_dn" -s base userPassword 2>&1)" ||
        fail "service read of $alice_dn failed: $out"
    ! grep -qi '^userPassword' <<<"$out" || fail "the service account can read userPassword"
    # A person reads their own entry only.
    out="$(timeout 10 ldapsearch -x -o nettimeout=5 -LLL -H "$URL" -D "$alice_dn" -w "$CHECK_PW" \
        -b "$PEOPLE_BASE" '(objectClass=posixAccount)' uid 2>&1 || true)"
    [[ "$(grep -c '^dn:' <<<"$out" || true)" == 1 ]] || fail "$CHECK_USER should see exactly her own entry: $out"

    out="$(timeout 10 ldapsearch "${bind_svc[@]}" -ZZ -LLL -H "$URL" -b "$PEOPLE_BASE" "(uid=$CHECK_USER)" dn 2>&1)" ||
        fail "StartTLS search (-ZZ, CA $LDAPTLS_CACERT) failed: $out"
    out="$(timeout 10 ldapsearch "${bind_svc[@]}" -LLL -H "$LDAPS_URL" -b "$PEOPLE_BASE" "(uid=$CHECK_USER)" dn 2>&1)" ||
        fail "ldaps search on $LDAPS_URL (CA $LDAPTLS_CACERT) failed: $out"
    unset LDAPTLS_CACERT LDAPTLS_REQCERT
    msg "checks passed: service search, group filter, binds (right/wrong/empty password), ACLs, StartTLS, ldaps"
}
