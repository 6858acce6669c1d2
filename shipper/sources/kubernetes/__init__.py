"""``type: kubernetes``: discovery of the Redis pods of this node (list + watch), and their sources."""
