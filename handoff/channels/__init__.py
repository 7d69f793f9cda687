"""Customer channels: each turns its platform's messages into calls on the router and back."""
