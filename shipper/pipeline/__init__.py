"""The pipeline: labels, the durable spool and its rows, the agent that wires sources to sink workers."""
