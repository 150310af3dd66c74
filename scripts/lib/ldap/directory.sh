# shellcheck shell=bash
# The config and data of our slapd (sourced by scripts/dev-ldap): its folders and
# generated passwords, cn=config and the test directory rendered from etc/dev-ldap,
# and slapd.d and the database rebuilt from them when they change.

# ---------------------------------------------------------------- files

prepare_dirs() {
    step "prepare $LDAP_DIR"
    local d
    for d in "$DATA_DIR" "$RUN_DIR"; do
        [[ -d $d ]] || install -d -o "$SLAPD_USER" -g "$SLAPD_GROUP" "$d"
    done
    mkdir -p "$TLS_DIR"
    chown root:root "$LDAP_DIR"
    chmod 755 "$LDAP_DIR"
    chmod 700 "$DATA_DIR"
    chmod 755 "$RUN_DIR"
    for d in "$DATA_DIR" "$RUN_DIR" "$CONF_DIR"; do
        fix_owner "$d" "$SLAPD_USER" all
    done
    touch "$LOG" "$TOOL_LOG"
}

# new_password FILE: a random password, written without a newline.
new_password() {
    local file=$1 pw
    pw="$(openssl rand -hex 16)"
    (umask 077 && printf '%s' "$pw" >"$file.tmp")
    mv -f "$file.tmp" "$file"
    chmod 600 "$file"
    chown root:root "$file"
}

# password_hash FILE: the {SSHA} hash of FILE's password, kept in FILE.ssha
# (made again when the password file is newer), so the rendered config and
# directory stay the same from one start to the next.
password_hash() {
    local file=$1
    if [[ ! -s $file.ssha || $file -nt $file.ssha ]]; then
        (umask 077 && /usr/sbin/slappasswd -h '{SSHA}' -T "$file" >"$file.ssha.tmp")
        mv -f "$file.ssha.tmp" "$file.ssha"
    fi
    head -n1 "$file.ssha"
}

ensure_secrets() {
    step "generate passwords"
    if [[ ! -s $SERVICE_PW_FILE ]]; then
        new_password "$SERVICE_PW_FILE"
        msg "generated the service account password in $SERVICE_PW_FILE"
    fi
    [[ -s $ROOT_PW_FILE ]] || new_password "$ROOT_PW_FILE"
    chmod 600 "$SERVICE_PW_FILE" "$ROOT_PW_FILE"
    # The gateway's service user reads the service password (and nobody else).
    if getent group gateway >/dev/null; then
        chgrp gateway "$SERVICE_PW_FILE"
        chmod 640 "$SERVICE_PW_FILE"
    fi
}

# ---------------------------------------------------------------- config and data

module_dir() {
    local d
    # Debian: /usr/lib/ldap; the others just in case.
    for d in /usr/lib/ldap /usr/lib/*-linux-gnu*/ldap /usr/lib/openldap /usr/libexec/openldap; do
        if [[ -e $d/back_mdb.so || -e $d/back_mdb.la ]]; then echo "$d"; return 0; fi
    done
    return 1
}

# render_config: the cn=config LDIF for this machine, on stdout.
render_config() {
    local moddir="" root_hash
    root_hash="$(password_hash "$ROOT_PW_FILE")"
    if ! moddir="$(module_dir)"; then
        # A slapd with mdb built in needs no module entry.
        grep -qw mdb <<<"$("$SLAPD" -VVV 2>&1 || true)" || fail "back_mdb module not found (looked in /usr/lib/ldap and similar)"
        moddir=""
    fi
    local drop_module=()
    # Without a module folder, drop the cn=module{0} entry (up to its blank line).
    [[ -n $moddir ]] || drop_module=(-e '/^dn: cn=module{0},cn=config$/,/^$/d')
    sed -e "s|@MODULE_DIR@|$moddir|g" \
        -e "s|@SCHEMA_DIR@|/etc/ldap/schema|g" \
        -e "s|@RUN_DIR@|$RUN_DIR|g" \
        -e "s|@DATA_DIR@|$DATA_DIR|g" \
        -e "s|@TLS_DIR@|$TLS_DIR|g" \
        -e "s|@ROOT_PW_HASH@|$root_hash|g" \
        "${drop_module[@]}" "$CONFIG_TEMPLATE"
}

render_directory() {
    local svc_hash
    svc_hash="$(password_hash "$SERVICE_PW_FILE")"
    sed -e "s|@SERVICE_PW_HASH@|$svc_hash|g" "$DIRECTORY_LDIF"
}

# check_rendered FILE: no placeholder left outside comments.
check_rendered() {
    if grep -v '^#' "$1" | grep -q '@[A-Z_]*@'; then
        fail "unreplaced placeholder in $1: $(grep -v '^#' "$1" | grep -o '@[A-Z_]*@' | sort -u | tr '\n' ' ')"
    fi
}

# plan_changes: compare what the templates give now with what slapd.d and the
# database were made from.
plan_changes() {
    step "render $CONFIG_TEMPLATE and $DIRECTORY_LDIF"
    render_config >"$CONF_SRC.new"
    check_rendered "$CONF_SRC.new"
    if [[ ! -s $CONF_DIR/cn=config.ldif || ! -s $CONF_SRC ]] || ! cmp -s "$CONF_SRC.new" "$CONF_SRC"; then
        CONFIG_CHANGED=1
    else
        rm -f "$CONF_SRC.new"
    fi
    (umask 077 && render_directory >"$DATA_SRC.new")
    check_rendered "$DATA_SRC.new"
    if [[ ! -s $DATA_DIR/data.mdb || ! -s $DATA_SRC ]] || ! cmp -s "$DATA_SRC.new" "$DATA_SRC"; then
        DATA_CHANGED=1
    else
        rm -f "$DATA_SRC.new"
    fi
}

# build_config: make slapd.d from the rendered LDIF (slapd must be stopped).
build_config() {
    step "create cn=config in $CONF_DIR (slapadd -n0)" "$TOOL_LOG"
    msg "creating $CONF_DIR"
    local new="$CONF_DIR.new"
    rm -rf "$new"
    mkdir -p "$new"
    echo "== $(date '+%F %T') slapadd -n0 -F $new -l $CONF_SRC.new" >>"$TOOL_LOG"
    /usr/sbin/slapadd -n0 -F "$new" -l "$CONF_SRC.new" >>"$TOOL_LOG" 2>&1 ||
        fail "slapadd -n0 rejected the config (rendered from $CONFIG_TEMPLATE into $CONF_SRC.new)"
    chown -R "$SLAPD_USER:$SLAPD_GROUP" "$new"
    chmod 750 "$new"
    step "check the new config (slaptest)" "$TOOL_LOG"
    echo "== $(date '+%F %T') slaptest -u -F $new" >>"$TOOL_LOG"
    /usr/sbin/slaptest -u -F "$new" >>"$TOOL_LOG" 2>&1 || fail "slaptest rejects the new config"
    rm -rf "$CONF_DIR"
    mv "$new" "$CONF_DIR"
    mv -f "$CONF_SRC.new" "$CONF_SRC"
    # The database's indexes follow the config: rebuild them for kept data.
    if ((DATA_CHANGED == 0)) && [[ -s $DATA_DIR/data.mdb ]]; then
        step "reindex the database (slapindex)" "$TOOL_LOG"
        /usr/sbin/slapindex -F "$CONF_DIR" -b "$SUFFIX" >>"$TOOL_LOG" 2>&1 || fail "slapindex failed"
        chown -R "$SLAPD_USER:$SLAPD_GROUP" "$DATA_DIR"
    fi
}

# load_data: (re)load the test directory into an empty database (slapd stopped).
load_data() {
    step "load the test directory (slapadd)" "$TOOL_LOG"
    if [[ -s $DATA_DIR/data.mdb ]]; then
        msg "the test directory changed (or was never loaded here): reloading it"
    fi
    msg "loading $DIRECTORY_LDIF into $DATA_DIR"
    rm -f "$DATA_DIR"/*.mdb "$DATA_SRC"
    echo "== $(date '+%F %T') slapadd -F $CONF_DIR -b $SUFFIX -l $DATA_SRC.new" >>"$TOOL_LOG"
    /usr/sbin/slapadd -F "$CONF_DIR" -b "$SUFFIX" -l "$DATA_SRC.new" >>"$TOOL_LOG" 2>&1 ||
        fail "slapadd rejected the test directory $DIRECTORY_LDIF"
    chown -R "$SLAPD_USER:$SLAPD_GROUP" "$DATA_DIR"
    mv -f "$DATA_SRC.new" "$DATA_SRC"
}
