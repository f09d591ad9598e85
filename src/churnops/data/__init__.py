"""Reading, describing and checking customer tables."""
