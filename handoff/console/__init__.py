"""The agent console: log in, see the queue, claim, talk to customers, close, hand back."""
