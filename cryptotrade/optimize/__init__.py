"""cryptotrade.optimize."""
