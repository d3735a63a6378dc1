"""The HTTP API (FastAPI): patients' readings now; trends, care teams and exports to come."""
