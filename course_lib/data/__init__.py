"""Small catalogs (JSON files with the source of every number) and the offline training corpus."""
