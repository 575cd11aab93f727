"""cryptotrade."""
