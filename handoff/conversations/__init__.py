"""Conversations: what is stored (models), the verbs that change them (service), where a message goes (router)."""
