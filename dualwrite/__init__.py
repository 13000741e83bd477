"""dualwrite: the front door."""
