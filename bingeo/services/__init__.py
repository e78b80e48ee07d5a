"""Use cases of bingeo: each composes the storage layer with the pure core in one transaction."""
