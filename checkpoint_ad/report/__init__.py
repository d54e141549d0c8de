"""Reports: a markdown report of records with its figures, the headline that opens it, and the
graph tables."""
