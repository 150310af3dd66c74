# shellcheck shell=bash
# The TLS files of our slapd (sourced by scripts/dev-ldap): a test CA and a server
# certificate for 127.0.0.1, localhost and the machine's name, made anew only when
# missing, expiring or naming other hosts.

# tls_hostnames: the DNS names in the server certificate. localhost for
# clients in general; the machine's own name too because OpenLDAP's client
# library checks "ldap://localhost" URLs against that name, not "localhost".
tls_hostnames() {
    local fqdn
    fqdn="$(getent hosts "$HOSTNAME" 2>/dev/null | awk 'NR == 1 { print $2 }' || true)"
    printf '%s\n' localhost "$HOSTNAME" ${fqdn:+"$fqdn"} | awk 'NF && !seen[$0]++'
}

tls_ok() {
    local ca="$TLS_DIR/ca.pem" crt="$TLS_DIR/server.pem" key="$TLS_DIR/server.key"
    [[ -s $ca && -s $crt && -s $key && -s $TLS_DIR/ca.key ]] || return 1
    # Valid for at least 7 more days, signed by our CA, and the key matches.
    openssl x509 -noout -checkend 604800 -in "$ca" >/dev/null 2>&1 || return 1
    openssl x509 -noout -checkend 604800 -in "$crt" >/dev/null 2>&1 || return 1
    openssl verify -CAfile "$ca" "$crt" >/dev/null 2>&1 || return 1
    local name
    for name in $(tls_hostnames); do
        openssl x509 -noout -checkhost "$name" -in "$crt" 2>/dev/null | grep -q 'does match' || return 1
    done
    openssl x509 -noout -checkip 127.0.0.1 -in "$crt" 2>/dev/null | grep -q 'does match' || return 1
    [[ "$(openssl x509 -noout -pubkey -in "$crt" 2>/dev/null)" == \
        "$(openssl pkey -pubout -in "$key" 2>/dev/null)" ]]
}

# ca_ok: our CA can sign for at least a year more.
ca_ok() {
    local ca="$TLS_DIR/ca.pem" key="$TLS_DIR/ca.key"
    [[ -s $ca && -s $key ]] || return 1
    openssl x509 -noout -checkend 31536000 -in "$ca" >/dev/null 2>&1 || return 1
    [[ "$(openssl x509 -noout -pubkey -in "$ca" 2>/dev/null)" == \
        "$(openssl pkey -pubout -in "$key" 2>/dev/null)" ]]
}

# make_tls: a new server certificate, and a new CA first if ours is not
# usable (a kept CA keeps ca.pem valid for clients that already have it).
make_tls() {
    step "create TLS certificates in $TLS_DIR" "$TOOL_LOG"
    local tmp names new_ca=0
    names="$(tls_hostnames | paste -sd' ' -)"
    ca_ok || new_ca=1
    if ((new_ca)); then
        msg "creating a test CA in $TLS_DIR"
    fi
    msg "creating a server certificate for 127.0.0.1 and ${names// /, } in $TLS_DIR"
    tmp="$(mktemp -d "$TLS_DIR/new.XXXXXX")"
    # Our own openssl config (see the template).
    local san
    san="IP:127.0.0.1, $(tls_hostnames | sed 's/^/DNS:/' | paste -sd, - | sed 's/,/, /g')"
    sed "s|@SUBJECT_ALT_NAME@|$san|" "$SCRIPTS_LIB/ldap/openssl.cnf.in" >"$tmp/openssl.cnf"
    if ((new_ca)); then
        echo "== $(date '+%F %T') openssl: new CA" >>"$TOOL_LOG"
        openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
            -config "$tmp/openssl.cnf" -extensions v3_ca \
            -keyout "$tmp/ca.key" -out "$tmp/ca.pem" >>"$TOOL_LOG" 2>&1 ||
            { rm -rf "$tmp"; fail "openssl could not create the CA"; }
    else
        cp "$TLS_DIR/ca.key" "$TLS_DIR/ca.pem" "$tmp/"
    fi
    echo "== $(date '+%F %T') openssl: new server certificate" >>"$TOOL_LOG"
    {
        openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" \
            -config "$tmp/openssl.cnf" -keyout "$tmp/server.key" -out "$tmp/server.csr" &&
        openssl x509 -req -sha256 -days 825 -in "$tmp/server.csr" \
            -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -set_serial "0x$(openssl rand -hex 12)" \
            -extfile "$tmp/openssl.cnf" -extensions v3_server -out "$tmp/server.pem"
    } >>"$TOOL_LOG" 2>&1 || { rm -rf "$tmp"; fail "openssl could not create the server certificate"; }
    install -m 600 -o root -g root "$tmp/ca.key" "$TLS_DIR/ca.key"
    install -m 644 -o root -g root "$tmp/ca.pem" "$TLS_DIR/ca.pem"
    install -m 644 -o root -g root "$tmp/server.pem" "$TLS_DIR/server.pem"
    install -m 640 -o root -g "$SLAPD_GROUP" "$tmp/server.key" "$TLS_DIR/server.key"
    rm -rf "$tmp"
    TLS_CHANGED=1
}

# tls_checked: the last full check (tls_ok) is newer than the TLS files and
# the certificates do not expire within a week: no need for openssl.
readonly TLS_STAMP="$TLS_DIR/checked"
tls_checked() {
    local f until host now
    [[ -s $TLS_STAMP ]] || return 1
    for f in ca.pem ca.key server.pem server.key; do
        [[ -e $TLS_DIR/$f && ! $TLS_DIR/$f -nt $TLS_STAMP ]] || return 1
    done
    read -r until host <"$TLS_STAMP" || return 1
    [[ $host == "$HOSTNAME" ]] || return 1        # machine renamed: check the names
    printf -v now '%(%s)T' -1
    [[ $until =~ ^[0-9]+$ ]] && ((now + 604800 < until))
}

# cert_end FILE: the certificate's notAfter, in seconds since the epoch.
cert_end() { date -d "$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)" +%s; }

ensure_tls() {
    step "check TLS files in $TLS_DIR" "$TOOL_LOG"
    if ! tls_checked; then
        chown root:root "$TLS_DIR"
        chmod 755 "$TLS_DIR"
        tls_ok || make_tls
        local ca_end srv_end
        ca_end="$(cert_end "$TLS_DIR/ca.pem")"
        srv_end="$(cert_end "$TLS_DIR/server.pem")"
        echo "$((ca_end < srv_end ? ca_end : srv_end)) $HOSTNAME" >"$TLS_STAMP"
    fi
    # slapd reads the key after dropping root.
    if [[ "$(stat -c '%U %G %a' "$TLS_DIR/server.key")" != "root $SLAPD_GROUP 640" ]]; then
        chown "root:$SLAPD_GROUP" "$TLS_DIR/server.key"
        chmod 640 "$TLS_DIR/server.key"
    fi
}
