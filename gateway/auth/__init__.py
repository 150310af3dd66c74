"""Logging people in: LDAP (ldap3) and local accounts; both end in a User row."""
