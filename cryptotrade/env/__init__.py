"""cryptotrade.env."""
