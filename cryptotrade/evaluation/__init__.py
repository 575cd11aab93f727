"""cryptotrade.evaluation."""
