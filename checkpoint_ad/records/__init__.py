"""Records: the versioned measurement record, what its fields may hold, where it comes from, its
files and the folders they are written into."""
