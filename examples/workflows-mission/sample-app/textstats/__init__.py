"""textstats: small statistics over plain text."""
