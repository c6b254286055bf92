"""Data: records, discovery, separation, balancing, caching and loading."""
