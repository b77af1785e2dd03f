"""Named models: where they come from, how they are fetched, converted and cached."""
