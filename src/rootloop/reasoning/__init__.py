"""From findings to a diagnosis and a proposed action."""
