"""cryptotrade.market."""
