"""Command line, local stack and demo."""
