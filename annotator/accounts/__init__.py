"""Who may do what: roles and the OPERATOR (access.py), user accounts (users.py), sign-in tokens."""
