"""Support agents: who they are, how they log in, what they may do."""
