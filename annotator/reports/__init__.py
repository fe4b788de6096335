"""What researchers read: the dashboard's counts and agreement, status, stopping, findings (corrected shares)."""
