"""Staff: the panel's accounts and roles, logging in (throttled, remembered devices), the
signed session and its revocation, the account page and the admins' staff pages."""
