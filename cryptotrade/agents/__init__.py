"""cryptotrade.agents."""
