"""pafpose tests."""
