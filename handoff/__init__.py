"""The web service between customers, the assistant and agents: it owns every conversation."""
