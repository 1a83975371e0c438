"""Data: table schemas and files, annotation records, dataset adapters, the PartWorld generator."""
